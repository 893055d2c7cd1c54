"""Options of the [libvirt] group: the compute agent's libvirt driver."""

from __future__ import annotations

from oslo_config import cfg

from ocs.compute_agent.domain_xml import DEFAULT_KERNEL_CMDLINE

GROUP = "libvirt"

OPTS = [
    cfg.StrOpt(
        "uri",
        default="qemu:///system",
        help="libvirt connection URI of this host's hypervisor. Without systemd, "
        "start 'virtlogd -d', then 'libvirtd -d'.",
    ),
    cfg.StrOpt(
        "virt_type",
        default="auto",
        choices=["auto", "kvm", "qemu"],
        help="Domain type of guests. 'auto' uses KVM only if libvirt offers it and a "
        "probe guest really boots under it no slower than software emulation (local "
        "URIs only); otherwise 'qemu' (TCG). The choice is logged and shown as the "
        "host's hypervisor type.",
    ),
    cfg.StrOpt(
        "instances_path",
        default="/var/lib/ocs/instances",
        help="Guest files (qcow2 overlay, config drive, console log), one directory per "
        "instance. With qemu:///system, QEMU runs as libvirt's own user, so every "
        "directory above this one must be searchable by others.",
    ),
    cfg.StrOpt(
        "image_cache_path",
        default="/var/lib/ocs/image-cache",
        help="Per-host cache of images from the image store, named by checksum; "
        "overlays are backed by these files. Same reachability rule as instances_path.",
    ),
    cfg.StrOpt(
        "kernel_cmdline",
        default=DEFAULT_KERNEL_CMDLINE,
        help="Kernel command line for guests booted directly from a kernel image "
        "(AKI/ARI). Keep console=ttyS0: GetConsoleOutput reads the serial console. "
        "cryptomgr.notests skips the kernel's crypto self-tests, a tenth of a "
        "kernel's boot under software emulation.",
    ),
    cfg.StrOpt("machine", default="", help="QEMU machine type (e.g. q35); empty for libvirt's default."),
    cfg.StrOpt(
        "cpu_mode",
        default="",
        help="libvirt CPU mode; empty means host-passthrough under KVM and QEMU's default model otherwise.",
    ),
    cfg.BoolOpt(
        "force_config_drive",
        default=True,
        help="Give every guest a NoCloud config drive (instance-id, hostname, public "
        "key, user-data, network config), so that user-data works where no metadata "
        "service answers.",
    ),
    cfg.StrOpt(
        "config_drive_device",
        default="disk",
        choices=["disk", "cdrom"],
        help="Attach the config drive as a read-only virtio disk or as a cdrom.",
    ),
    cfg.StrOpt("qemu_img", default="qemu-img", help="Command that creates the qcow2 overlays of guests."),
    cfg.StrOpt(
        "rbd_keyring",
        default="",
        help="Keyring file with the cephx keys of the users that Ceph RBD volumes are "
        "attached as ([volume] rbd_user). The agent keeps each key in a libvirt secret "
        "(the UUID comes with the volume) that QEMU authenticates with. Empty: "
        "/etc/ceph/ceph.client.<user>.keyring, then /etc/ceph/keyring.",
    ),
    cfg.FloatOpt(
        "detach_timeout",
        default=30.0,
        min=1.0,
        help="Seconds a running guest may take to release a hot-unplugged volume or "
        "interface; the request is repeated every 2 seconds, as a booting guest may miss it.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
