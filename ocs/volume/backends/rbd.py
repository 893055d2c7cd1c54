"""The ``rbd`` backend: volumes and snapshots as Ceph RBD images in one pool, made with the ``rbd`` CLI.

Layout in ``pool``::

    vol-…                          a volume: an RBD image, attached by QEMU's librbd
    snap-…                         a snapshot: an RBD image that is never written ...
    snap-…@ocs-snapshot            ... and its one protected RBD snapshot (the bytes clones read)
    tmp-<hex>-vol-… / -snap-…      work in progress (removed by :meth:`cleanup`)
    vol-…@tmp-<hex>-snap-…         the point in time a snapshot in progress copies

Why these choices (EC2 lets a snapshot outlive its volume, and a volume made from
a snapshot outlive the snapshot):

* A snapshot is its own image, a copy of an RBD snapshot of the volume
  (``rbd snap create`` for the point in time, ``rbd cp`` from it, then the
  volume's snapshot is removed), not an RBD snapshot left on the volume. An RBD
  snapshot lives inside its image: the volume could not be deleted while any of
  its snapshots lives (``rbd rm`` refuses an image with snapshots), and it would
  keep every snapshot's bytes in its own object set. ``rbd cp`` skips what was
  never written, so the copy holds the data written, not the volume's size.
  The copy's content is then frozen in a *protected* RBD snapshot
  (``snap-…@ocs-snapshot``): Ceph itself makes it read-only and refuses to remove
  it, so "a snapshot's data is immutable once completed" holds by construction.
* A volume from a snapshot is ``rbd clone`` of that protected snapshot (Ceph's
  copy-on-write layering, instant) followed at once by ``rbd flatten``, which
  copies the parent's allocated objects into the clone and cuts the link. The
  new volume then owns all its bytes: DeleteSnapshot is a plain removal at any
  time, and a deleted snapshot's bytes are really gone, not kept alive by a
  hidden parent. The copy costs O(data written) once, while the volume is
  ``creating``; an unflattened clone would make the volume instant but tie the
  snapshot's lifetime (and a flatten under a running guest) to DeleteSnapshot.
* Every result is made under a ``tmp-`` name and renamed into place
  (``rbd rename`` is atomic), so an interrupted operation leaves either the whole
  object or something :meth:`cleanup` removes. ``rbd rm`` deletes the objects
  themselves (not the RBD trash): the bytes of a deleted volume or snapshot are gone.

Every Ceph call has a deadline: the client's own timeouts (monitor connection,
monitor and OSD operations, ``timeout`` seconds each) and a wall-clock bound on
the whole command (``timeout``, or ``copy_timeout`` for the calls that copy
data), because Ceph clients wait rather than fail while placement groups are
unavailable. The CLI needs no Python bindings (``python3-rbd`` exists only for
Debian's own Python).

A volume is attached as a network disk (:meth:`RbdBackend.export`): the export
carries ``pool/image``, the monitors' addresses, the cephx user and the UUID of
the libvirt secret under which compute hosts keep that user's key (derived from
the cluster's fsid and the user unless ``secret_uuid`` is set), so that every
host names the same secret. Any host that reaches the monitors can attach it.
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import threading
import uuid
from typing import Any

from ocs.volume.backend import GIB, BackendError, Export, ObjectMissing, Stats, VolumeBackend

LOG = logging.getLogger(__name__)
_TMP = "tmp-"
SNAPSHOT_NAME = "ocs-snapshot"  # the protected RBD snapshot of a snapshot image
_ENOENT, _EEXIST, _EINVAL = 2, 17, 22
#: Namespace of the libvirt secret UUIDs derived from (fsid, user).
SECRET_NAMESPACE = uuid.UUID("6b0f5b3e-2a49-5b8e-9d0c-4a1f2e7c3d51")


def secret_uuid_of(fsid: str, user: str) -> str:
    """The UUID under which compute hosts keep ``client.<user>``'s key for cluster ``fsid``."""
    return str(uuid.uuid5(SECRET_NAMESPACE, f"{fsid}/client.{user}"))


class RbdBackend(VolumeBackend):
    """Volumes and snapshots as images of ``pool``; see the module docstring.

    ``ceph_conf`` and ``keyring`` are paths ('' for Ceph's defaults under
    /etc/ceph); ``user`` is the cephx id (``ocs`` for ``client.ocs``), which
    needs ``profile rbd`` on the monitors and on the pool. ``timeout`` bounds
    every Ceph call in seconds, ``copy_timeout`` the calls that copy a volume's
    data. ``monitors`` ('' to ask the cluster) and ``secret_uuid`` ('' to derive
    it) override what the export tells compute hosts.
    """

    name = "rbd"

    def __init__(
        self,
        pool: str = "rbd",
        *,
        ceph_conf: str = "",
        user: str = "admin",
        keyring: str = "",
        timeout: float = 30.0,
        copy_timeout: float = 3600.0,
        monitors: str = "",
        secret_uuid: str = "",
        rbd: str = "rbd",
        ceph: str = "ceph",
        rados: str = "rados",
    ) -> None:
        if not pool or "/" in pool or "@" in pool:
            raise ValueError(f"not an RBD pool name: {pool!r}")
        if timeout <= 0 or copy_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.pool = pool
        self.ceph_conf = ceph_conf
        self.user = user
        self.keyring = keyring
        self.timeout = float(timeout)
        self.copy_timeout = float(copy_timeout)
        self.rbd = rbd
        self.ceph = ceph
        self.rados = rados
        self._monitors = monitors
        self._secret_uuid = secret_uuid
        self._cluster: tuple[str, str] | None = None  # (fsid, monitors), asked once
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RbdBackend(pool={self.pool!r}, user={self.user!r})"

    # --- names ----------------------------------------------------------------------------------

    def spec(self, image: str, snapshot: str = "") -> str:
        """``pool/image[@snapshot]`` as the CLI and QEMU name it."""
        return f"{self.pool}/{_safe(image)}" + (f"@{snapshot}" if snapshot else "")

    @staticmethod
    def _tmp(final: str) -> str:
        return f"{_TMP}{secrets.token_hex(4)}-{final}"

    # --- the CLI ------------------------------------------------------------------------------

    def client_args(self) -> list[str]:
        """The connection options every ``rbd``/``ceph``/``rados`` call gets."""
        args = ["--id", self.user]
        if self.ceph_conf:
            args += ["--conf", self.ceph_conf]
        if self.keyring:
            args += ["--keyring", self.keyring]
        bound = f"{self.timeout:g}"
        return args + [
            "--client-mount-timeout",
            bound,
            "--rados-mon-op-timeout",
            bound,
            "--rados-osd-op-timeout",
            bound,
        ]

    def _call(
        self, program: str, *args: str, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        limit = self.timeout + 5.0 if timeout is None else timeout
        cmd = [program, *self.client_args(), *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
        except FileNotFoundError:
            raise BackendError(f"{program} is not installed (package ceph-common)") from None
        except subprocess.TimeoutExpired:
            raise BackendError(
                f"{program} {args[0]} took longer than {limit:g} s (is the Ceph cluster reachable and healthy?)"
            ) from None

    def _rbd(self, *args: str, timeout: float | None = None, missing: str = "") -> str:
        """Run ``rbd``; its stdout. ObjectMissing (with ``missing``) when it says ENOENT."""
        done = self._call(self.rbd, *args, timeout=timeout)
        if done.returncode == 0:
            return done.stdout
        said = _last_line(done.stderr) or done.stdout.strip()
        if missing and done.returncode == _ENOENT:
            raise ObjectMissing(f"{missing} is not in RBD pool {self.pool}")
        raise _Failed(done.returncode, f"rbd {' '.join(args[:2])} failed: {said}")

    def _json(self, *args: str, missing: str = "") -> Any:
        out = self._rbd(*args, "--format", "json", missing=missing)
        try:
            return json.loads(out or "null")
        except ValueError:
            raise BackendError(f"rbd {args[0]} printed no JSON: {out[:200]!r}") from None

    def _names(self) -> set[str]:
        """The names of the pool's images (one listing, no image opened)."""
        return {str(name) for name in self._json("ls", self.pool) or []}

    def _images(self) -> dict[str, list[str]]:
        """Every image of the pool → the names of its RBD snapshots."""
        found: dict[str, list[str]] = {}
        for entry in self._json("ls", "--long", self.pool) or []:
            snaps = found.setdefault(str(entry["image"]), [])
            if entry.get("snapshot"):
                snaps.append(str(entry["snapshot"]))
        return found

    def _exists(self, image: str) -> bool:
        try:
            self._rbd("info", self.spec(image), missing=image)
        except ObjectMissing:
            return False
        return True

    def _remove(self, image: str) -> None:
        """Remove an image and its (unprotected) RBD snapshots; a missing one is a no-op.

        Two removals of one image may race (a redelivered message, the service's
        sweep): the loser's ``rbd`` fails (ENOENT, or ESTALE once the winner removed
        the id), and the image being gone is what counts."""
        try:
            self._rbd("snap", "purge", self.spec(image), missing=image)
            self._rbd("rm", self.spec(image), missing=image)
        except ObjectMissing:
            pass
        except _Failed:
            if self._exists(image):
                raise

    def _discard(self, image: str, *, snapshot: bool = False) -> None:
        """Remove what a failed operation made, if it can; :meth:`cleanup` removes the rest."""
        try:
            self._remove_snapshot_image(image) if snapshot else self._remove(image)
        except BackendError as exc:
            LOG.warning("cannot remove %s after a failure (cleanup will): %s", self.spec(image), exc)

    def _rename(self, tmp: str, final: str) -> None:
        self._rbd("rename", self.spec(tmp), self.spec(final))

    def _used_bytes(self, image: str, snapshot: str = "") -> int:
        """What the image (or its snapshot) occupies, in whole RADOS objects (``rbd du``)."""
        usage = self._json("du", self.spec(image, snapshot), missing=image)
        return sum(int(i.get("used_size", 0)) for i in usage.get("images", []))

    # --- the contract ------------------------------------------------------------------------

    def create(self, volume_id: str, size_gib: int) -> None:
        tmp = self._tmp(volume_id)  # no check first: an existing volume is found by the rename
        try:
            self._rbd("create", "--size", f"{int(size_gib)}G", self.spec(tmp))
            self._place(tmp, volume_id)
        except BaseException:
            self._discard(tmp)
            raise

    def _place(self, tmp: str, final: str) -> None:
        """Rename ``tmp`` to ``final``; if ``final`` appeared meanwhile, keep it and drop ``tmp``."""
        try:
            self._rename(tmp, final)
        except _Failed as exc:
            if exc.code != _EEXIST:
                raise
            self._remove(tmp)

    def clone(self, snapshot_id: str, volume_id: str, size_gib: int) -> None:
        if self._exists(volume_id):  # checked first: a clone copies the snapshot's data
            return
        tmp = self._tmp(volume_id)
        try:
            self._rbd(
                "clone",
                self.spec(snapshot_id, SNAPSHOT_NAME),
                self.spec(tmp),
                missing=f"snapshot {snapshot_id}",
            )
            self._rbd("flatten", self.spec(tmp), timeout=self.copy_timeout)
            if int(self._json("info", self.spec(tmp))["size"]) < int(size_gib) * GIB:
                # Never shrinks: rbd resize refuses that without --allow-shrink.
                self._rbd("resize", "--size", f"{int(size_gib)}G", self.spec(tmp))
            self._place(tmp, volume_id)
        except BaseException:
            self._discard(tmp)
            raise

    def delete(self, volume_id: str) -> None:
        self._remove(volume_id)

    def snapshot(self, volume_id: str, snapshot_id: str) -> int:
        if self._exists(snapshot_id):
            return self._used_bytes(snapshot_id, SNAPSHOT_NAME)
        point = self._tmp(snapshot_id)  # the volume's RBD snapshot: the point in time
        self._rbd("snap", "create", self.spec(volume_id, point), missing=f"volume {volume_id}")
        try:
            self._frozen_copy(self.spec(volume_id, point), snapshot_id)
        finally:
            try:
                self._drop_snap(volume_id, point)
            except BackendError as exc:  # cleanup() removes it later
                LOG.warning("volume %s: cannot remove RBD snapshot %s: %s", volume_id, point, exc)
        return self._used_bytes(snapshot_id, SNAPSHOT_NAME)

    def copy_snapshot(self, source_id: str, snapshot_id: str) -> int:
        """CopySnapshot: ``snapshot_id`` as an image of its own, copied from the source's
        frozen RBD snapshot (deleting either never touches the other). An existing
        snapshot of that ID is left alone; ObjectMissing without the source."""
        if self._exists(snapshot_id):
            return self._used_bytes(snapshot_id, SNAPSHOT_NAME)
        if not self._exists(source_id):
            raise ObjectMissing(f"snapshot {source_id} is not in RBD pool {self.pool}")
        self._frozen_copy(self.spec(source_id, SNAPSHOT_NAME), snapshot_id)
        return self._used_bytes(snapshot_id, SNAPSHOT_NAME)

    def _frozen_copy(self, source: str, snapshot_id: str) -> None:
        """Copy ``source`` (``pool/image@snap``) into the snapshot image ``snapshot_id``,
        frozen in its protected RBD snapshot, under a temporary name until complete."""
        tmp = self._tmp(snapshot_id)
        try:
            self._rbd("cp", source, self.spec(tmp), timeout=self.copy_timeout)
            self._rbd("snap", "create", self.spec(tmp, SNAPSHOT_NAME))
            self._rbd("snap", "protect", self.spec(tmp, SNAPSHOT_NAME))
            self._place_snapshot(tmp, snapshot_id)
        except BaseException:
            self._discard(tmp, snapshot=True)
            raise

    def _place_snapshot(self, tmp: str, final: str) -> None:
        try:
            self._rename(tmp, final)
        except _Failed as exc:
            if exc.code != _EEXIST:
                raise
            self._remove_snapshot_image(tmp)

    def _drop_snap(self, image: str, snapshot: str) -> None:
        try:
            self._rbd("snap", "rm", self.spec(image, snapshot), missing=image)
        except ObjectMissing:
            pass

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._remove_snapshot_image(snapshot_id)

    def _remove_snapshot_image(self, image: str) -> None:
        """Remove a snapshot image (or an interrupted one): flatten any clone still
        reading from it (a volume whose creation was interrupted), unprotect its RBD
        snapshot, remove it. A missing image is a no-op."""
        try:
            snaps = {str(s["name"]) for s in self._json("snap", "ls", self.spec(image), missing=image) or []}
        except ObjectMissing:
            return
        if SNAPSHOT_NAME in snaps:
            frozen = self.spec(image, SNAPSHOT_NAME)
            for child in self._json("children", frozen) or []:
                name = child if isinstance(child, str) else str(child.get("image", ""))
                pool = self.pool if isinstance(child, str) else str(child.get("pool", self.pool))
                try:
                    self._rbd("flatten", f"{pool}/{_safe(name)}", timeout=self.copy_timeout, missing=name)
                except ObjectMissing:
                    pass
            try:
                self._rbd("snap", "unprotect", frozen)
            except _Failed as exc:
                if exc.code != _EINVAL:  # EINVAL: not protected (an interrupted snapshot)
                    raise
        self._remove(image)

    def grow(self, volume_id: str, size_gib: int) -> None:
        current = self.size_gib(volume_id)
        if size_gib < current:
            raise BackendError(f"volume {volume_id} is {current} GiB: it cannot shrink to {size_gib} GiB")
        if size_gib > current:
            self._rbd(
                "resize", "--size", f"{int(size_gib)}G", self.spec(volume_id), missing=f"volume {volume_id}"
            )

    def size_gib(self, volume_id: str) -> int:
        info = self._json("info", self.spec(volume_id), missing=f"volume {volume_id}")
        return -(-int(info["size"]) // GIB)

    def export(self, volume_id: str) -> Export:
        if not self._exists(volume_id):
            raise ObjectMissing(f"volume {volume_id} is not in RBD pool {self.pool}")
        if self._monitors and self._secret_uuid:  # configured: no need to ask the cluster
            fsid, monitors = "", self._monitors
        else:
            fsid, monitors = self.cluster()
        return Export(
            backend=self.name,
            target=self.spec(volume_id),
            options={
                "format": "raw",
                "monitors": monitors,
                "auth_username": self.user,
                "secret_uuid": self._secret_uuid or secret_uuid_of(fsid, self.user),
            },
        )

    def cluster(self) -> tuple[str, str]:
        """The cluster's fsid and its monitors (``host:port,…``, legacy addresses where
        a monitor has one: QEMU's librbd speaks both protocols), asked once."""
        with self._lock:
            if self._cluster is None:
                self._cluster = self._ask_cluster()
            return self._cluster

    def _ask_cluster(self) -> tuple[str, str]:
        done = self._call(self.ceph, "mon", "dump", "--format", "json")
        if done.returncode != 0:
            raise BackendError(f"ceph mon dump failed: {_last_line(done.stderr)}")
        try:
            monmap = json.loads(done.stdout)
            monitors = [_mon_address(m) for m in monmap["mons"]]
            fsid = str(monmap["fsid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"ceph mon dump printed no monitor map: {exc}") from None
        return fsid, self._monitors or ",".join(a for a in monitors if a)

    def volumes(self) -> set[str]:
        return {name for name in self._names() if name.startswith("vol-")}

    def snapshots(self) -> set[str]:
        return {name for name in self._names() if name.startswith("snap-")}

    def cleanup(self) -> None:
        for image, snaps in self._images().items():
            if image.startswith(_TMP):
                self._remove_snapshot_image(image)  # flattens any child, then removes
            else:
                for snap in snaps:
                    if snap.startswith(_TMP):  # an interrupted snapshot's point in time
                        self._drop_snap(image, snap)

    def stats(self) -> Stats:
        usage = self._json("du", "--pool", self.pool) or {}
        images = usage.get("images", [])
        volumes = {
            i["name"]: i for i in images if str(i["name"]).startswith("vol-") and not i.get("snapshot")
        }
        snapshots = {i["name"] for i in images if str(i["name"]).startswith("snap-")}
        capacity = free = 0  # unknown, if the cluster will not say
        done = self._call(self.rados, "df", "--format", "json")
        if done.returncode == 0:
            try:
                df = json.loads(done.stdout)
                capacity, free = int(df["total_space"]) * 1024, int(df["total_avail"]) * 1024
            except (ValueError, KeyError, TypeError):
                pass
        return Stats(
            volumes=len(volumes),
            snapshots=len(snapshots),
            provisioned_bytes=sum(int(v.get("provisioned_size", 0)) for v in volumes.values()),
            allocated_bytes=int(usage.get("total_used_size", 0)),
            capacity_bytes=capacity,
            free_bytes=free,
        )


class _Failed(BackendError):
    """An ``rbd`` command failed with exit status ``code`` (Ceph's errno)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and "% complete" not in line]
    return lines[-1] if lines else ""


def _mon_address(mon: dict[str, Any]) -> str:
    addrs = (mon.get("public_addrs") or {}).get("addrvec") or []
    by_type = {str(a.get("type")): str(a.get("addr", "")) for a in addrs}
    return by_type.get("v1") or by_type.get("v2") or str(mon.get("addr", "")).split("/")[0]


def _safe(name: str) -> str:
    """``name`` if it can be an image or snapshot name in a ``pool/image@snap`` spec, else ValueError."""
    if not name or any(c in name for c in "/@\0 ") or name.startswith("-"):
        raise ValueError(f"not a volume or snapshot id: {name!r}")
    return name
