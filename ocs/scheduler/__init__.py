"""The scheduler: which compute host runs each new instance.

* :mod:`ocs.scheduler.core` — the pure core, ``schedule(hosts, request) ->
  Placement``: host states and the request in, one host per instance out, or
  :class:`~ocs.scheduler.core.NoValidHost` with a report of how many hosts each
  filter removed.  No configuration, database or bus: settings are given at
  construction (:func:`~ocs.scheduler.core.make_scheduler`), so every decision
  can be replayed from its inputs.
* :mod:`ocs.scheduler.filters` — one small predicate per reason a host cannot take
  an instance (disabled or down, excluded, availability zone, architecture,
  instance limit, vCPU, RAM, disk), in the plain dictionary ``FILTERS``.
* :mod:`ocs.scheduler.weighers` — ``spread`` (emptiest host first) and ``pack``
  (fullest host that fits first).

The service around the core builds the host states, claims each placed instance's
resources in the database atomically (so schedulers running at once never
overcommit a host), retries the rest on a lost claim and reschedules failed builds
on other hosts.
"""
