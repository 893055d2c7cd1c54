"""Domain XML: golden files, libvirt's schema, and reading OCS's facts back.

Regenerate the golden files after an intended change with
``OCS_UPDATE_GOLDEN=1 pytest tests/unit/compute_agent/test_domain_xml.py`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from ocs.compute_agent import domain_xml
from ocs.compute_agent.domain_xml import DomainSettings, GuestFiles
from ocs.compute_agent.driver import GuestSpec, ImageRef, NicSpec, VolumeAttachment

GOLDEN = Path(__file__).parent / "golden"
HOME = "/var/lib/ocs/instances/i-0123456789abcdef0"
B64_HELLO = "IyEvYmluL3NoCmVjaG8gaGk="


def kernel_booted() -> tuple[GuestSpec, GuestFiles, DomainSettings]:
    """The test image's shape: AKI/ARI, config drive, a volume, and NICs: bound to a bridge with the
    network service's tap, one with neither (left out), one with a tap only (type ethernet)."""
    spec = GuestSpec(
        instance_id="i-0123456789abcdef0",
        vcpus=2,
        memory_mib=512,
        disk_gib=8,
        image=ImageRef("ami-0123456789abcdef0", "ab" * 32, "raw"),
        hostname="ip-10-0-0-5",
        kernel=ImageRef("aki-0123456789abcdef0", "cd" * 32, "aki"),
        ramdisk=ImageRef("ari-0123456789abcdef0", "ef" * 32, "ari"),
        user_data=B64_HELLO,
        nics=(
            NicSpec(
                "02:00:0A:00:00:05",
                "ocsb0123456789a",
                "10.0.0.5",
                "eni-0123456789abcdef0",
                mtu=1450,
                tap="ocst0123456789a",
            ),
            NicSpec("02:00:0a:00:00:06", "", "10.0.1.6", "eni-0123456789abcdef1", device_index=1),
            NicSpec(
                "02:00:0a:00:00:08",
                "",
                "10.0.1.8",
                "eni-0123456789abcdef2",
                device_index=2,
                tap="ocst0fedcba9876",
            ),
        ),  # fmt: skip
        volumes=(
            VolumeAttachment("vol-0123456789abcdef0", "/dev/sdf", "file", "/var/lib/ocs/volumes/v.img"),
        ),
        config_drive=True,
    )
    files = GuestFiles(
        root_disk=f"{HOME}/disk",
        console_log=f"{HOME}/console.log",
        config_drive=f"{HOME}/config.iso",
        kernel="/var/lib/ocs/image-cache/sha256-" + "cd" * 32,
        ramdisk="/var/lib/ocs/image-cache/sha256-" + "ef" * 32,
    )
    return spec, files, DomainSettings(virt_type="qemu")


def disk_booted_kvm() -> tuple[GuestSpec, GuestFiles, DomainSettings]:
    """A disk image under KVM: host CPU, cdrom config drive, an rbd volume, jumbo frames, i386."""
    spec = GuestSpec(
        instance_id="i-0fedcba9876543210",
        vcpus=4,
        memory_mib=4096,
        disk_gib=20,
        image=ImageRef("ami-0fedcba9876543210", "12" * 32, "qcow2"),
        architecture="i386",
        nics=(NicSpec("02:00:0a:00:01:07", "br-vpc-2", "10.0.1.7", "eni-0fedcba9876543210", mtu=9000),),
        volumes=(
            VolumeAttachment(
                "vol-0fedcba9876543210",
                "/dev/xvdg",
                "rbd",
                "volumes/volume-0fedcba9876543210",
                {
                    "monitors": "10.1.0.1:6789,10.1.0.2:3300",
                    "auth_username": "ocs",
                    "secret_uuid": "5e3c0d55-0c5a-4e0e-9c1c-9a7d6a3a2b11",
                },
                read_only=True,
            ),
        ),
    )
    home = "/srv/ocs/instances/i-0fedcba9876543210"
    files = GuestFiles(
        root_disk=f"{home}/disk", console_log=f"{home}/console.log", config_drive=f"{home}/config.iso"
    )
    settings = DomainSettings(
        virt_type="kvm", cpu_mode="host-passthrough", config_drive_device="cdrom", machine="q35"
    )
    return spec, files, settings


def ebs_root() -> tuple[GuestSpec, GuestFiles, DomainSettings]:
    """An EBS-backed guest: its root disk is its root volume (a qcow2 file of the ``file``
    backend), no disk of its own; one more volume beside it; kernel boot."""
    spec, files, settings = kernel_booted()
    root = VolumeAttachment(
        "vol-0aaaaaaaaaaaaaaaa", "/dev/xvda", "file", "/var/lib/ocs/volumes/volumes/vol-0aaaaaaaaaaaaaaaa.qcow2",
        {"format": "qcow2"},
    )  # fmt: skip
    spec = replace(spec, disk_gib=0, nics=spec.nics[:1], root_volume=root)
    return spec, replace(files, root_disk=""), settings


CASES: dict[str, Callable[[], tuple[GuestSpec, GuestFiles, DomainSettings]]] = {
    "kernel_booted": kernel_booted,
    "disk_booted_kvm": disk_booted_kvm,
    "ebs_root": ebs_root,
}


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("OCS_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing; run with OCS_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), f"{name} differs from its golden file (OCS_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("case", sorted(CASES))
def test_domain_xml_matches_golden_file(case: str) -> None:
    golden(f"{case}.xml", domain_xml.domain_xml(*CASES[case]()))


def test_every_golden_file_has_a_case() -> None:
    assert {p.stem for p in GOLDEN.glob("*.xml")} == set(CASES)


@pytest.mark.skipif(
    shutil.which("virt-xml-validate") is None, reason="virt-xml-validate (libvirt-clients) missing"
)
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_files_are_valid_libvirt_domains(case: str) -> None:
    done = subprocess.run(
        ["virt-xml-validate", str(GOLDEN / f"{case}.xml"), "domain"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_xml_is_a_function_of_its_inputs() -> None:
    assert domain_xml.domain_xml(*kernel_booted()) == domain_xml.domain_xml(*kernel_booted())
    assert domain_xml.domain_uuid("i-1") == domain_xml.domain_uuid("i-1") != domain_xml.domain_uuid("i-2")


def test_acpi_is_always_on_and_the_console_goes_to_the_log() -> None:
    for make in CASES.values():
        spec, files, settings = make()
        root = ET.fromstring(domain_xml.domain_xml(spec, files, settings))
        assert root.find("features/acpi") is not None
        assert root.find("devices/serial[@type='file']/source").get("path") == files.console_log  # type: ignore[union-attr]
        assert root.findtext("on_poweroff") == "destroy" and root.findtext("on_reboot") == "restart"


def test_nics_take_the_network_services_tap_and_bridge() -> None:
    root = ET.fromstring(domain_xml.domain_xml(*kernel_booted()))
    ifaces = root.findall("devices/interface")
    assert [i.find("mac").get("address") for i in ifaces] == ["02:00:0a:00:00:05", "02:00:0a:00:00:08"]  # type: ignore[union-attr]
    bridged, plain = ifaces
    assert bridged.get("type") == "bridge"
    assert bridged.find("source").get("bridge") == "ocsb0123456789a"  # type: ignore[union-attr]
    assert bridged.find("target").get("dev") == "ocst0123456789a"  # type: ignore[union-attr]
    assert bridged.find("mtu").get("size") == "1450"  # type: ignore[union-attr]
    # a tap only: the network service plugs it into a bridge in its own namespace
    assert plain.get("type") == "ethernet" and plain.find("source") is None
    assert plain.find("target").get("dev") == "ocst0fedcba9876"  # type: ignore[union-attr]


def test_nics_unbound_by_the_network_service_get_a_tap_after_their_interface() -> None:
    nic = NicSpec("02:00:00:00:00:01", "br0", interface_id="eni-0123456789abcdef0")
    assert domain_xml.tap_name(nic) == "tap0123456789ab"


def test_without_a_kernel_the_guest_boots_from_its_disk() -> None:
    root = ET.fromstring(domain_xml.domain_xml(*disk_booted_kvm()))
    assert root.find("os/kernel") is None and root.find("os/boot").get("dev") == "hd"  # type: ignore[union-attr]
    assert root.find("os/type").get("arch") == "i686"  # type: ignore[union-attr]


def test_parse_domain_reads_back_what_was_written() -> None:
    spec, files, settings = kernel_booted()
    facts = domain_xml.parse_domain(domain_xml.domain_xml(spec, files, settings))
    assert facts is not None
    assert (facts.instance_id, facts.vcpus, facts.memory_mib, facts.disk_gib) == (spec.instance_id, 2, 512, 8)
    assert facts.image_id == spec.image.image_id
    assert facts.volumes == ("vol-0123456789abcdef0",)
    assert facts.volume_targets == {"vol-0123456789abcdef0": "vdf"}
    assert facts.targets == ("vda", "vdz", "vdf")
    assert facts.interfaces == ("02:00:0a:00:00:05", "02:00:0a:00:00:08")
    assert facts.console_log == files.console_log


def test_libvirt_memory_units_are_understood() -> None:
    xml = domain_xml.domain_xml(*kernel_booted()).replace(
        '<memory unit="MiB">512</memory>', "<memory>524288</memory>"
    )
    facts = domain_xml.parse_domain(xml)
    assert facts is not None and facts.memory_mib == 512


@pytest.mark.parametrize(
    "xml",
    [
        "<domain type='qemu'><name>web-server</name></domain>",
        "<domain type='qemu'><name>ocs-i-0123456789abcdef0</name></domain>",  # no metadata
        "<domain type='qemu'><name>ocs-i-0123456789abcdef0</name><metadata>"
        "<ocs:instance xmlns:ocs='urn:ocs:compute:instance:1'><ocs:id>i-other</ocs:id></ocs:instance>"
        "</metadata></domain>",  # metadata of another instance
    ],
)
def test_foreign_domains_are_not_ocs_domains(xml: str) -> None:
    assert domain_xml.parse_domain(xml) is None


@pytest.mark.parametrize(
    ("device", "target"),
    [("/dev/sdf", "vdf"), ("/dev/xvdg", "vdg"), ("/dev/vdb", "vdb"), ("/dev/sdaa", "vdaa")],
)
def test_ec2_device_names_map_to_virtio_targets(device: str, target: str) -> None:
    assert domain_xml.volume_target(device) == target


@pytest.mark.parametrize("device", ["/dev/sda", "/dev/sdz", "sdf", "/dev/sdf1", "/dev/nvme1n1", ""])
def test_unusable_device_names_are_refused(device: str) -> None:
    with pytest.raises(ValueError):
        domain_xml.volume_target(device)


def test_an_unknown_volume_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="iscsi"):
        domain_xml.volume_xml(VolumeAttachment("vol-1", "/dev/sdf", "iscsi", "iqn..."), "vdf")


def test_device_snippets_for_hotplug() -> None:
    nic = NicSpec("02:00:00:00:00:01", "br0", interface_id="eni-00000000000000001")
    iface = domain_xml.interface_xml(nic)
    assert ET.fromstring(iface).find("source").get("bridge") == "br0"  # type: ignore[union-attr]
    whole = domain_xml.domain_xml(*kernel_booted())
    found = domain_xml.interface_of(whole, "02:00:0A:00:00:05")
    assert found is not None and "ocsb0123456789a" in found
    assert domain_xml.interface_of(whole, "02:00:00:00:00:99") is None
    disk = ET.fromstring(
        domain_xml.volume_xml(VolumeAttachment("vol-0a", "/dev/sdg", "file", "/dev/mapper/v"), "vdg")
    )
    assert disk.get("type") == "block" and disk.find("alias").get("name") == "ua-vol-0a"  # type: ignore[union-attr]
    assert disk.findtext("serial") == "vol0a"


def test_instance_ids_come_back_from_domain_names() -> None:
    assert domain_xml.instance_id_of(domain_xml.domain_name("i-0123")) == "i-0123"
    assert domain_xml.instance_id_of("ocs-") is None and domain_xml.instance_id_of("web") is None


def test_an_ebs_root_is_the_root_disk_and_no_hot_pluggable_volume() -> None:
    spec, files, settings = ebs_root()
    xml = domain_xml.domain_xml(spec, files, settings)
    root = ET.fromstring(xml)
    first = root.findall("devices/disk")[0]
    assert first.find("target").get("dev") == "vda"  # type: ignore[union-attr]
    assert first.find("source").get("file") == spec.root_volume.target  # type: ignore[union-attr]
    assert first.find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert first.find("alias") is None and first.findtext("serial") == "vol0aaaaaaaaaaaaaaaa"
    facts = domain_xml.parse_domain(xml)
    assert facts is not None and facts.root_volume == "vol-0aaaaaaaaaaaaaaaa" and facts.disk_gib == 0
    assert facts.volumes == ("vol-0123456789abcdef0",)  # what sync_volumes may plug and unplug
    assert domain_xml.parse_domain(domain_xml.domain_xml(*kernel_booted())).root_volume == ""  # type: ignore[union-attr]
