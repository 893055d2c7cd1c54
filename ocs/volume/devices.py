"""EBS device names, as EC2 validates them for Linux instances (pure: no bus, database or config).

The EC2 user guide ("Device names for volumes on Amazon EC2 instances") lists for
Linux instances ``/dev/sd[a-z]``, ``/dev/xvd[a-z]`` and ``/dev/xvd[b-c][a-z]`` (the
names Kubernetes allocates for that reason, kubernetes#27534), with
``/dev/sda1`` and ``/dev/xvda`` the root devices. Anything else is refused with
``InvalidParameterValue`` "Value (/dev/sdi1) for parameter device is invalid.
/dev/sdi1 is not a valid EBS device name." [sous-chefs/aws#134 (``/dev/sdi1``),
kubernetes#27534 (``/dev/sdba``), kubernetes#42293 (``/dev/xvdeo``),
base2genomics/batchit#15 (``/dev/sdk1``)]; a bare ``xvdf`` is refused the same way
(it is valid only on Windows instances).

``/dev/sdf`` and ``/dev/xvdf`` are one disk to the guest (the same virtio slot
``vdf``): EC2 does not notice the clash (joeduffy/blocker#1), OCS does, and answers
as for a device in use: ``InvalidParameterValue`` "Invalid value '/dev/sdf' for
unixDevice. Attachment point /dev/sdf is already in use" [nanovms/ops#1189]. The
slot ``a`` is the root disk's and ``z`` the config drive's (the libvirt driver's
layout, :mod:`ocs.compute_agent.domain_xml`): they are always in use.
"""

from __future__ import annotations

import re

from ocs import errors

_EBS_DEVICE = re.compile(r"^/dev/(?:sd([a-z])|xvd([a-z]|[b-c][a-z])|sd(a)1)$")
#: Slots a volume never gets: the root disk's and the config drive's.
RESERVED_SLOTS = frozenset({"a", "z"})


def check_device(device: str) -> str:
    """The guest slot (``f`` for ``/dev/sdf`` and ``/dev/xvdf``, ``ba`` for ``/dev/xvdba``)
    of a valid EBS device name; EC2's InvalidParameterValue otherwise."""
    match = _EBS_DEVICE.match(device or "")
    if not match:
        raise errors.InvalidParameterValue(
            value=device, name="device", reason=f"{device} is not a valid EBS device name."
        )
    return next(g for g in match.groups() if g)


def is_valid(device: str) -> bool:
    """Whether ``device`` is a valid EBS device name (no error: RunInstances words its own)."""
    return bool(_EBS_DEVICE.match(device or ""))


def slot_of(device: str) -> str | None:
    """The guest slot of a device name, valid or not (``None`` if it has none)."""
    match = re.match(r"^/dev/(?:sd|xvd|vd|hd)([a-z]{1,2})\d*$", device or "")
    return match.group(1) if match else None


def in_use(device: str) -> errors.InvalidParameterValue:
    return errors.InvalidParameterValue(
        f"Invalid value '{device}' for unixDevice. Attachment point {device} is already in use"
    )


def check_free(device: str, taken: list[str]) -> None:
    """InvalidParameterValue (in use) if ``device`` shares its slot with a reserved one or
    with one of the instance's ``taken`` device names (its root device, its volumes)."""
    slot = check_device(device)
    if slot in RESERVED_SLOTS or any(slot_of(t) == slot for t in taken):
        raise in_use(device)
