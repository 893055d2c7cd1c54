"""Options of the [volume] group: the block-storage service and its backend."""

from __future__ import annotations

from pathlib import Path

from oslo_config import cfg

GROUP = "volume"

OPTS = [
    cfg.StrOpt(
        "backend",
        default="file",
        choices=[
            ("file", "volumes and snapshots as image files in state_dir, made with qemu-img"),
            ("rbd", "volumes and snapshots as Ceph RBD images in rbd_pool, made with the rbd CLI"),
        ],
        help="Where ocs-volume keeps the bytes of EBS volumes and snapshots. 'file' keeps "
        "them on this machine's disk, so only instances on this machine can attach them. "
        "'rbd' keeps them in a Ceph cluster: instances on any host that reaches its "
        "monitors attach them as network disks (QEMU's librbd; package qemu-block-extra), "
        "so a volume moves between hosts. ocs-volume needs the ceph-common package.",
    ),
    cfg.StrOpt(
        "state_dir",
        sample_default="<state_dir>/volumes",
        help="Directory of the 'file' backend: 'volumes/' holds one image file per volume, "
        "'snapshots/' one read-only qcow2 file per snapshot. Defaults to the 'volumes' "
        "directory inside [DEFAULT] state_dir. Run one ocs-volume per directory.",
    ),
    cfg.StrOpt(
        "volume_format",
        default="qcow2",
        choices=[
            ("qcow2", "sparse qcow2 files; a volume made from a snapshot is an overlay on it (instant)"),
            ("raw", "plain raw files; a volume made from a snapshot is a full copy of it"),
        ],
        help="Disk format of the 'file' backend's volumes. Snapshots are qcow2 either way.",
    ),
    cfg.StrOpt(
        "qemu_img",
        default="qemu-img",
        help="The qemu-img program the 'file' backend runs (from the qemu-utils package).",
    ),
    cfg.StrOpt(
        "rbd_pool",
        default="rbd",
        help="Ceph pool of the 'rbd' backend, initialised for RBD ('rbd pool init'). Give "
        "each OCS cloud its own pool: ocs-volume removes the images named vol-... and "
        "snap-... in it that its database does not know.",
    ),
    cfg.StrOpt(
        "rbd_ceph_conf",
        default="",
        help="Ceph configuration file of the 'rbd' backend (monitors, ...); empty for "
        "Ceph's default, /etc/ceph/ceph.conf.",
    ),
    cfg.StrOpt(
        "rbd_user",
        default="admin",
        help="Cephx user of the 'rbd' backend, without 'client.'. Give OCS its own: "
        "ceph auth get-or-create client.ocs mon 'profile rbd' osd 'profile rbd "
        "pool=<rbd_pool>' mgr 'profile rbd pool=<rbd_pool>'. Compute hosts attach "
        "volumes as this user too (see [libvirt] rbd_keyring).",
    ),
    cfg.StrOpt(
        "rbd_keyring",
        default="",
        help="Keyring file holding rbd_user's key; empty for Ceph's default search "
        "(/etc/ceph/ceph.client.<user>.keyring, ...).",
    ),
    cfg.FloatOpt(
        "rbd_timeout",
        default=30.0,
        min=1.0,
        help="Seconds one Ceph call of the 'rbd' backend may take (connecting, each "
        "monitor and OSD operation, and the whole command, except the data copies that "
        "operation_timeout bounds). Ceph clients wait rather than fail while placement "
        "groups are unavailable: past this the operation fails and the volume or "
        "snapshot ends in the 'error' state.",
    ),
    cfg.StrOpt(
        "rbd_monitors",
        default="",
        help="Monitor addresses (host:port,...) that compute hosts are told to attach "
        "'rbd' volumes through; empty to ask the cluster (ceph mon dump) once at start.",
    ),
    cfg.StrOpt(
        "rbd_secret_uuid",
        default="",
        help="UUID of the libvirt secret under which compute hosts keep rbd_user's key; "
        "empty to derive it from the cluster's fsid and the user (every host then agrees "
        "on it). The compute agent defines the secret itself.",
    ),
    cfg.FloatOpt(
        "operation_timeout",
        default=3600.0,
        min=1.0,
        help="Seconds one backend step (creating, copying or growing an image; for 'rbd', "
        "a copy of a volume's data) may take before it is abandoned and the volume or snapshot ends in the 'error' state.",
    ),
    cfg.IntOpt(
        "workers",
        default=4,
        min=1,
        help="Volume operations ocs-volume runs at once (each copy of a snapshot is one).",
    ),
    cfg.FloatOpt(
        "sweep_interval",
        default=5.0,
        min=0.05,
        help="Seconds between two sweeps of ocs-volume: it deletes the bytes of volumes "
        "left in the 'deleting' state without a message to it (the DeleteOnTermination "
        "volumes of an instance that was terminated) or whose message was lost.",
    ),
    cfg.FloatOpt(
        "attachment_timeout",
        default=120.0,
        min=0.0,
        help="Seconds an attachment may stay 'attaching' or 'detaching' before ocs-volume "
        "asks the instance's compute host which volumes its guest really has and records "
        "that (the host's report, or the request to it, was lost). Checked at every sweep.",
    ),
    cfg.IntOpt(
        "gib_per_account",
        default=51200,
        min=0,
        help="Total size in GiB of the volumes one account may hold (EC2's default storage "
        "quota is 50 TiB per volume type and region). CreateVolume past it answers "
        "VolumeLimitExceeded. 'ocs-manage quota set ACCOUNT --volume-gib N' overrides it "
        "for one account.",
    ),
    cfg.IntOpt(
        "provisioned_iops_per_account",
        default=300000,
        min=0,
        help="Total provisioned IOPS of the io1 and io2 volumes one account may hold (EC2's "
        "default quota for io1 is 300,000 per region). CreateVolume and ModifyVolume past it "
        "answer MaxIOPSLimitExceeded. 'ocs-manage quota set ACCOUNT --provisioned-iops N' "
        "overrides it for one account.",
    ),
    cfg.IntOpt(
        "snapshots_per_account",
        default=100000,
        min=0,
        help="Snapshots one account may hold (EC2's default is 100,000 per region). "
        "CreateSnapshot past it answers SnapshotLimitExceeded. 'ocs-manage quota set "
        "ACCOUNT --snapshots N' overrides it for one account.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)


def state_path(conf: cfg.ConfigOpts) -> Path:
    """The 'file' backend's directory configured in ``conf`` (read at the process edge)."""
    if conf.volume.state_dir:
        return Path(conf.volume.state_dir).expanduser()
    return Path(conf.state_dir).expanduser() / "volumes"
