"""Benchmarks of OCS measured side by side with moto's server (issue 8).

``python -m benchmarks run [--quick]`` starts the OCS all-in-one, the OCS
scale-out setup (``ocs-manage devcluster up``: gunicorn API workers, schedulers,
agents as processes over this machine's PostgreSQL and RabbitMQ; in the full run,
or with ``--servers ocs,moto,ocs-scaleout``) and moto's server on 127.0.0.1, runs
the same boto3 workloads against each from a client in a process of its own, and
prints a table of OCS's figures, moto's figure and their ratios; it also writes ``results.json`` and ``latency.png`` (latency of
DescribeInstances against the number of instances present). The OCS-only rows
(run→running on the fake driver, scheduler decisions per second, real guests on
libvirt when it and the test image are there) follow. Modes: ``--quick`` (under
two minutes, up to 1,000 instances), the default full run (up to 10,000; about
12 minutes, most of it moto's filtered DescribeInstances), ``--tiny`` (smoke test).

Modules:

- :mod:`benchmarks.servers`: the servers under test, each a subprocess.
- :mod:`benchmarks.workloads`: the boto3 workloads, one code for every server.
- :mod:`benchmarks.client`: the client runner (its own process).
- :mod:`benchmarks.modes`: how many calls and seconds each mode spends.
- :mod:`benchmarks.ocs_only`: measurements that have no peer in moto.
- :mod:`benchmarks.run_to_running`: run→running latency on the all-in-one.
- :mod:`benchmarks.libvirt_boot`: boot time of a real guest through the libvirt driver.
- :mod:`benchmarks.suite`: the orchestration; :mod:`benchmarks.report`: table, JSON, plot.
- :mod:`benchmarks.profile_server`: py-spy on the all-in-one during one workload (or
  pyinstrument on the scheduler service): where a row's time goes.
"""
