"""Configuration: every group registered, the committed sample up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocs.conf import make_conf
from ocs.conf.opts import list_opts

ROOT = Path(__file__).resolve().parents[2]


def test_every_option_has_real_help():
    for group, opts in list_opts():
        for opt in opts:
            assert opt.help and len(opt.help) > 20, f"[{group}] {opt.name} needs a real help text"


def test_defaults_are_the_all_in_one_defaults():
    conf = make_conf()
    conf([])
    assert conf.bus.transport_url == "memory://"
    assert conf.api.listen == "127.0.0.1:8773"
    assert conf.compute.driver == "fake"
    assert conf.database.connection is None


def test_config_file_overrides_defaults(tmp_path):
    path = tmp_path / "ocs.conf"
    path.write_text("[api]\nlisten = 0.0.0.0:9999\n[ec2]\nregion = eu-west-9\n")
    conf = make_conf()
    conf([], default_config_files=[str(path)])
    assert conf.api.listen == "0.0.0.0:9999"
    assert conf.ec2.region == "eu-west-9"


def test_committed_sample_is_current(tmp_path):
    out = tmp_path / "ocs.conf.sample"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "oslo_config.generator",
            "--config-file",
            str(ROOT / "etc/ocs/ocs-config-generator.conf"),
            "--output-file",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    committed = (ROOT / "etc/ocs/ocs.conf.sample").read_text()
    assert out.read_text() == committed, "etc/ocs/ocs.conf.sample is stale: run 'tox -e genconfig'"


def test_network_driver_follows_the_hypervisor_and_noop_cannot_carry_real_guests(tmp_path):
    import pytest

    from ocs import errors
    from ocs.cmd.network import driver_name, settings_from_conf

    def conf_with(text: str):
        path = tmp_path / "net.conf"
        path.write_text(text)
        conf = make_conf()
        conf([], default_config_files=[str(path)])
        return conf

    assert driver_name(conf_with("[compute]\ndriver = fake\n")) == "noop"
    assert driver_name(conf_with("[compute]\ndriver = libvirt\n")) == "linux"
    with pytest.raises(errors.ConfigError, match="noop cannot carry"):
        driver_name(conf_with("[compute]\ndriver = libvirt\n[network]\ndriver = noop\n"))
    conf = conf_with("[network]\npublic_gateway = 198.51.100.1/24\npublic_gateway_on_host = true\n")
    plan = settings_from_conf(conf, "h1").plan
    assert (plan.public_gateway, plan.public_bridge, plan.public_gateway_on_host) == (
        "198.51.100.1/24", "ocs-public", True,
    )  # fmt: skip


def test_one_network_process_serves_several_hosts_only_with_the_noop_driver():
    from oslo_config import cfg

    from ocs.cmd.network import served_hosts

    conf = make_conf()
    conf([])
    conf.set_override("host", "h0")
    assert served_hosts(conf) == ["h0"]
    conf.set_override("hosts", ["h1", " h2", "h1", ""], group="network")
    assert served_hosts(conf) == ["h1", "h2"]
    conf.set_override("driver", "linux", group="network")
    with pytest.raises(cfg.Error, match="only the noop driver"):
        served_hosts(conf)
    conf.set_override("hosts", ["h1"], group="network")
    assert served_hosts(conf) == ["h1"]


def test_cluster_sample_and_units_name_only_real_options_and_commands():
    import configparser

    known = {(group or "DEFAULT", opt.name) for group, opts in list_opts() for opt in opts}
    sample = configparser.ConfigParser(default_section="__none__")
    sample.read(ROOT / "etc" / "ocs" / "ocs.conf.cluster")
    for section in sample.sections():
        for key in sample[section]:
            assert (section, key) in known, f"[{section}] {key} is no option"
    conf = make_conf()
    conf([], default_config_files=[str(ROOT / "etc" / "ocs" / "ocs.conf.cluster")])
    assert conf.scheduler.reschedule_on_host_down is True
    units = sorted((ROOT / "etc" / "systemd").glob("*.service"))
    assert [u.stem for u in units] == ["ocs-api", "ocs-compute-agent", "ocs-network", "ocs-scheduler"]
    for unit in units:
        assert f"ExecStart=/usr/local/bin/{unit.stem} --config-file" in unit.read_text()


def test_the_public_gateway_can_never_be_handed_out(tmp_path):
    import pytest

    from ocs import errors
    from ocs.api_ec2.service import settings_from_conf

    path = tmp_path / "pub.conf"
    path.write_text("[network]\npublic_gateway = 198.51.100.1/24\n")
    conf = make_conf()
    conf([], default_config_files=[str(path)])
    with pytest.raises(errors.ConfigError, match="public_gateway 198.51.100.1 is an address of"):
        settings_from_conf(conf)
    path.write_text("[network]\npublic_gateway = 198.51.100.1/24\npublic_address_pool = 198.51.100.128/25\n")
    conf = make_conf()
    conf([], default_config_files=[str(path)])
    assert settings_from_conf(conf).public_address_pool == ("198.51.100.128/25",)
