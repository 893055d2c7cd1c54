"""Build OCS's tiny bootable test image from Debian packages.

Usage: python -m ocs.images.test_image OUTDIR [--kernel-package PKG] [--debs DIR] [--quiet]

Downloads (``apt-get download``, nothing but the package mirrors) a Debian cloud
kernel (``linux-image-*-cloud-amd64``) and ``busybox-static``, extracts them
with ``dpkg-deb -x`` and writes into OUTDIR:

- ``ocs-test-kernel``  the kernel (register it as an AKI);
- ``ocs-test-initrd``  a busybox initramfs (the ARI) whose init prints
  ``OCS-TEST-IMAGE: ...`` markers on the serial console at each step;
- ``ocs-test-disk.img`` a 1 MiB raw machine image (the AMI) that the init
  recognises as its root disk;
- ``manifest.json``    what was built from what (versions, sha256 checksums).

The guest's init (busybox init; ``/etc/init.d/rcS`` then ``ocs-boot``):

1. ``OCS-TEST-IMAGE: init`` as soon as userspace runs; loads the virtio, ISO9660
   ACPI button and pvpanic modules; starts busybox ``acpid`` so that an ACPI power
   button (libvirt's shutdown and reboot) powers the guest off cleanly;
2. reports the root disk (``root disk /dev/vda 1024 MiB``) and mounts a
   NoCloud config drive (label ``cidata``) if there is one:
   ``config-drive instance-id=... hostname=...``;
3. with a NIC: DHCP with ``udhcpc`` (``dhcp ok <ip>`` / ``dhcp failed``), then
   the metadata service at 169.254.169.254 with busybox ``nc`` under ``timeout``
   (busybox ``wget`` segfaults there): ``metadata instance-id=...``;
4. ``OCS-TEST-IMAGE: userspace ready``; then runs user-data (from the config
   drive, else from the metadata service) if it starts with ``#!``, printing its
   output and ``user-data exit=<status>``;
5. on ``poweroff``/ACPI power button: ``OCS-TEST-IMAGE: shutting down``, unmount,
   power off.

At the end it prints the ``ocs-manage image import`` commands that register the
three images. Needs: apt-get (with package lists), dpkg-deb; no root, no network
beyond the mirrors, no cpio/genisoimage/mkfs.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

#: Bump when the image's content changes: caches keyed on it rebuild.
IMAGE_VERSION = "1"

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
ROOT_DISK_MAGIC = b"OCS-TEST-IMAGE-ROOT-DISK v1\n"

#: Modules the init loads (their dependencies are found and loaded first).
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "isofs", "nls_utf8", "button", "evdev", "pvpanic_mmio")

INITRAMFS_DIRS: tuple[str, ...] = ("bin", "dev", "etc", "etc/init.d", "etc/acpi", "etc/acpi/PWRF", "lib")
INITRAMFS_DIRS += ("lib/modules", "mnt", "proc", "root", "run", "sys", "tmp", "var")

KERNEL_NAME = "ocs-test-kernel"
INITRD_NAME = "ocs-test-initrd"
DISK_NAME = "ocs-test-disk.img"

INITTAB = """\
::sysinit:/etc/init.d/rcS
::once:/etc/init.d/ocs-boot
::ctrlaltdel:/bin/reboot
::shutdown:/etc/init.d/rcK
"""

RC_S = r"""#!/bin/sh
# sysinit: mounts, modules, ACPI, root disk and config drive (fast, no network).
export PATH=/bin
say() { echo "OCS-TEST-IMAGE: $*"; }
mount -t proc proc /proc
say init
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp /mnt/config /var/run /var/log
for m in $(cat /etc/modules); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
acpid -c /etc/acpi -l /dev/null
for dev in /sys/block/vd*; do
    [ -e "$dev" ] || continue
    name=${dev##*/}
    if [ "$(head -c 27 /dev/$name 2>/dev/null)" = "OCS-TEST-IMAGE-ROOT-DISK v1" ]; then
        say "root disk /dev/$name $(( $(cat $dev/size) / 2048 )) MiB"
    fi
done
for dev in /sys/block/vd* /sys/block/sr*; do
    [ -e "$dev" ] || continue
    name=${dev##*/}
    if mount -t iso9660 -o ro /dev/$name /mnt/config 2>/dev/null; then
        if [ -f /mnt/config/meta-data ]; then
            iid=$(sed -n 's/^instance-id: *//p' /mnt/config/meta-data | tr -d '"')
            host=$(sed -n 's/^local-hostname: *//p' /mnt/config/meta-data | tr -d '"')
            say "config-drive instance-id=$iid hostname=$host"
            [ -n "$host" ] && hostname "$host"
            [ -f /mnt/config/user-data ] && cp /mnt/config/user-data /run/user-data
            break
        fi
        umount /mnt/config
    fi
done
"""

OCS_BOOT = r"""#!/bin/sh
# once: network, metadata service, "userspace ready", user-data.
export PATH=/bin
say() { echo "OCS-TEST-IMAGE: $*"; }
http() {  # METHOD PATH [HEADER]: the body of a plain HTTP/1.0 answer from the metadata service
    { printf '%s %s HTTP/1.0\r\nHost: 169.254.169.254\r\n' "$1" "$2"
      [ -n "$3" ] && printf '%s\r\n' "$3"
      printf '\r\n'; } | timeout 3 nc 169.254.169.254 80 2>/dev/null > /tmp/http.out
    head -n 1 /tmp/http.out | grep -q ' 200 ' || return 1
    sed '1,/^\r*$/d' /tmp/http.out
}
nic=""
for dev in /sys/class/net/*; do
    [ "${dev##*/}" = lo ] || { nic=${dev##*/}; break; }
done
ip link set lo up
if [ -n "$nic" ]; then
    ip link set "$nic" up
    if udhcpc -i "$nic" -n -q -t 4 -T 1 -O staticroutes -s /etc/udhcpc.script >/dev/null 2>&1; then
        say "dhcp ok $(ip -4 -o addr show dev $nic | sed -n 's/.* inet \([0-9.]*\).*/\1/p')"
        token=$(http PUT /latest/api/token "X-aws-ec2-metadata-token-ttl-seconds: 300")
        hdr=""
        [ -n "$token" ] && hdr="X-aws-ec2-metadata-token: $token"
        if iid=$(http GET /latest/meta-data/instance-id "$hdr"); then
            say "metadata instance-id=$iid"
            [ -f /run/user-data ] || http GET /latest/user-data "$hdr" > /run/user-data || rm -f /run/user-data
        else
            say "metadata unavailable"
        fi
    else
        say "dhcp failed on $nic"
    fi
fi
say "userspace ready"
if [ -s /run/user-data ] && [ "$(head -c 2 /run/user-data)" = "#!" ]; then
    chmod +x /run/user-data
    /run/user-data
    say "user-data exit=$?"
fi
"""

RC_K = r"""#!/bin/sh
export PATH=/bin
echo "OCS-TEST-IMAGE: shutting down"
umount /mnt/config 2>/dev/null
sync
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
    bound|renew)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}"
        if [ -n "$staticroutes" ]; then  # option 121 replaces option 3 (RFC 3442)
            set -- $staticroutes
            while [ $# -ge 2 ]; do
                if [ "$2" = 0.0.0.0 ]; then ip route add "$1" dev "$interface" 2>/dev/null
                else ip route add "$1" via "$2" dev "$interface" 2>/dev/null; fi
                shift 2
            done
        else
            for r in $router; do ip route add default via "$r" dev "$interface" 2>/dev/null; break; done
        fi
        : > /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
        ;;
    deconfig)
        ifconfig "$interface" 0.0.0.0
        ;;
esac
exit 0
"""

#: busybox acpid runs /etc/acpi/PWRF/* (run-parts) when the power button is pressed.
ACPI_POWER = "#!/bin/sh\n/bin/poweroff\n"


# --- packages ----------------------------------------------------------------------


def run(*cmd: str, cwd: Path | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def kernel_package() -> str:
    """The concrete kernel package behind the cloud meta-package (the newest Debian has)."""
    out = run("apt-cache", "depends", KERNEL_META_PACKAGE)
    for line in out.splitlines():
        match = re.match(r"\s*Depends:\s*(linux-image-\S+-cloud-amd64)\s*$", line)
        if match:
            return match.group(1)
    raise SystemExit(f"cannot resolve {KERNEL_META_PACKAGE} with apt-cache (run 'apt-get update' first?)")


def download(packages: Iterable[str], debs: Path) -> dict[str, Path]:
    """``apt-get download`` each package into ``debs`` (reused when already there)."""
    debs.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for package in packages:
        have = sorted(debs.glob(f"{package}_*.deb"))
        if not have:
            run("apt-get", "download", "-q", package, cwd=debs)
            have = sorted(debs.glob(f"{package}_*.deb"))
        if not have:
            raise SystemExit(f"apt-get download {package} left no .deb in {debs}")
        found[package] = have[-1]
    return found


def extract(deb: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    run("dpkg-deb", "-x", str(deb), str(into))
    return into


# --- kernel modules ------------------------------------------------------------------


def module_index(root: Path) -> dict[str, Path]:
    """Module name (underscores) → its .ko file in an extracted kernel package."""
    return {ko.name[:-3].replace("-", "_"): ko for ko in root.glob("lib/modules/*/kernel/**/*.ko")}


def module_depends(ko: Path) -> list[str]:
    """The ``depends=`` of a module's .modinfo section."""
    data = ko.read_bytes()
    match = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    if not match or not match.group(1):
        return []
    return [d.decode().replace("-", "_") for d in match.group(1).split(b",") if d]


def module_load_order(index: dict[str, Path], wanted: Iterable[str]) -> list[str]:
    """``wanted`` with their dependencies, dependencies first."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name not in index:
            raise SystemExit(f"kernel module {name} not found (needed by {' > '.join(path) or 'init'})")
        for dep in module_depends(index[name]):
            if dep not in path:
                visit(dep, (*path, name))
        order.append(name)

    for name in wanted:
        visit(name, ())
    return order


# --- initramfs (cpio newc, written here so no cpio binary is needed) ----------------------


class Cpio:
    """A newc cpio archive built in memory (owner root, fixed mtime: reproducible)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self.ino += 1
        self.out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        self.out.write(name.encode() + b"\0")
        self._pad()
        self.out.write(data)
        self._pad()

    def _pad(self) -> None:
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def initramfs(busybox: Path, modules: dict[str, Path], order: list[str]) -> bytes:
    cpio = Cpio()
    for d in INITRAMFS_DIRS:
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    applets = run(str(busybox), "--list").split()
    for applet in applets:
        if applet != "busybox":
            cpio.symlink(f"bin/{applet}", "busybox")
    cpio.symlink("sbin", "bin")
    cpio.symlink("init", "bin/busybox")
    for name in order:
        cpio.file(f"lib/modules/{name}.ko", modules[name].read_bytes())
    cpio.file("etc/modules", ("\n".join(order) + "\n").encode())
    cpio.file("etc/inittab", INITTAB.encode())
    cpio.file("etc/init.d/rcS", RC_S.encode(), 0o755)
    cpio.file("etc/init.d/ocs-boot", OCS_BOOT.encode(), 0o755)
    cpio.file("etc/init.d/rcK", RC_K.encode(), 0o755)
    cpio.file("etc/udhcpc.script", UDHCPC_SCRIPT.encode(), 0o755)
    cpio.file("etc/acpi/PWRF/00000080", ACPI_POWER.encode(), 0o755)
    cpio.file("etc/hostname", b"ocs-test\n")
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/group", b"root:x:0:\n")
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


# --- outputs ---------------------------------------------------------------------------


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def import_commands(out: Path, tag: str) -> str:
    """The shell lines that register the image with ``ocs-manage image import``
    (which prints the new image's id)."""
    k, r, d = (out / KERNEL_NAME, out / INITRD_NAME, out / DISK_NAME)
    beside = Path(sys.executable).with_name("ocs-manage")  # the venv's, even when it is not activated
    manage = shlex.quote(str(beside)) if beside.exists() else "ocs-manage"
    return "\n".join(
        [
            f"AKI=$({manage} image import --type kernel --name 'ocs-test-kernel {tag}' --public {k})",
            f"ARI=$({manage} image import --type ramdisk --name 'ocs-test-initrd {tag}' --public {r})",
            f"{manage} image import --name 'ocs-test-image {tag}' --kernel $AKI --ramdisk $ARI --public {d}",
        ]
    )


def build(out: Path, debs: Path, package: str | None) -> dict[str, object]:
    package = package or kernel_package()
    found = download([package, BUSYBOX_PACKAGE], debs)
    with tempfile.TemporaryDirectory(prefix="ocs-test-image-") as tmp:
        kroot = extract(found[package], Path(tmp) / "kernel")
        broot = extract(found[BUSYBOX_PACKAGE], Path(tmp) / "busybox")
        vmlinuz = sorted(kroot.glob("boot/vmlinuz-*"))
        if not vmlinuz:
            raise SystemExit(f"no boot/vmlinuz-* in {found[package].name}")
        index = module_index(kroot)
        order = module_load_order(index, MODULES)
        initrd = initramfs(broot / "bin" / "busybox", index, order)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / KERNEL_NAME, vmlinuz[-1].read_bytes())
    write_atomic(out / INITRD_NAME, initrd)
    write_atomic(out / DISK_NAME, ROOT_DISK_MAGIC.ljust(1024 * 1024, b"\0"))
    manifest: dict[str, object] = {
        "image_version": IMAGE_VERSION,
        "kernel_package": found[package].name,
        "busybox_package": found[BUSYBOX_PACKAGE].name,
        "kernel_release": vmlinuz[-1].name.removeprefix("vmlinuz-"),
        "modules": order,
        "files": {n: sha256(out / n) for n in (KERNEL_NAME, INITRD_NAME, DISK_NAME)},
    }
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2).encode() + b"\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="where the kernel, initramfs, disk and manifest go")
    parser.add_argument("--kernel-package", help=f"default: what {KERNEL_META_PACKAGE} depends on")
    parser.add_argument("--debs", type=Path, help="where downloaded .debs are kept (default OUTDIR/debs)")
    parser.add_argument("--quiet", action="store_true", help="print only the import commands")
    args = parser.parse_args(argv)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SystemExit("build-test-image needs apt-get and dpkg-deb (Debian or Ubuntu)")
    out = args.outdir.resolve()
    manifest = build(out, (args.debs or out / "debs").resolve(), args.kernel_package)
    if not args.quiet:
        print(
            f"built OCS test image v{IMAGE_VERSION} from {manifest['kernel_package']} "
            f"and {manifest['busybox_package']} in {out}",
            file=sys.stderr,
        )
        print("register it with:", file=sys.stderr)
    print(import_commands(out, f"v{IMAGE_VERSION}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
