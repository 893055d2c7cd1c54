"""EBS volume types and the rules CreateVolume checks for them (pure: no bus, database or config).

Ranges are the EC2 API reference's (botocore model, CreateVolume ``Size``/``Iops``/
``Throughput``): gp2 1–16,384 GiB; gp3 1–65,536 GiB, 3,000–80,000 IOPS,
125–2,000 MiB/s; io1 4–16,384 GiB, 100–64,000 IOPS; io2 4–65,536 GiB,
100–256,000 IOPS; st1 and sc1 125–16,384 GiB; standard 1–1,024 GiB. Ratios are the
EBS user guide's: io1 50 IOPS per GiB, io2 1,000, gp3 500 (above its 3,000
baseline), gp3 0.25 MiB/s per IOPS.

Errors and their words, as EC2 answers them (evidence in brackets):

* Iops for a type without provisioned IOPS: ``InvalidParameterCombination`` "The
  parameter iops is not supported for gp2 volumes." [kube-aws#1208, CloudTrail];
  none for io1/io2: "The parameter iops must be specified for io1 volumes."
  [aws-ebs-csi-driver#766, velero-plugin-for-aws#119].
* Throughput other than for gp3: ``InvalidParameterCombination`` "throughput can
  only be specified for volumeType gp3." [runs-on#426].
* "Iops to volume size ratio of 266.666667 is too high; maximum is 50"
  [cloud-platform-terraform-monitoring#110], "… maximum is 500" for gp3
  [rocicorp/mono#4410]; "Throughput (MiBps) to iops ratio of 0.333333 is too high;
  maximum is 0.250000 MiBps per iops" [runs-on#260]: ``InvalidParameterValue``.
* Out-of-range sizes, IOPS and throughput, and unknown types:
  ``InvalidParameterValue`` in EC2's generic "Value (x) for parameter y is invalid."
  form (no EC2 wording for them was found; the code is what EC2 uses).

A gp2 volume reports its baseline IOPS (3 per GiB, 100 to 16,000), as EC2 does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocs import errors


@dataclass(frozen=True)
class VolumeType:
    name: str
    min_gib: int
    max_gib: int
    iops: tuple[int, int] | None = None  # provisioned IOPS range; None: not provisioned
    iops_required: bool = False
    default_iops: int | None = None
    iops_per_gib: int | None = None
    throughput: tuple[int, int] | None = None  # MiB/s; gp3 only
    default_throughput: int | None = None


TYPES: dict[str, VolumeType] = {
    t.name: t
    for t in (
        VolumeType("gp2", 1, 16384),
        VolumeType(
            "gp3",
            1,
            65536,
            iops=(3000, 80000),
            default_iops=3000,
            iops_per_gib=500,
            throughput=(125, 2000),
            default_throughput=125,
        ),
        VolumeType("io1", 4, 16384, iops=(100, 64000), iops_required=True, iops_per_gib=50),
        VolumeType("io2", 4, 65536, iops=(100, 256000), iops_required=True, iops_per_gib=1000),
        VolumeType("st1", 125, 16384),
        VolumeType("sc1", 125, 16384),
        VolumeType("standard", 1, 1024),
    )
}
DEFAULT_TYPE = "gp2"
GP3_MIB_PER_IOPS = 0.25


@dataclass(frozen=True)
class Performance:
    """What a volume records: its type, and the IOPS and throughput it reports."""

    volume_type: str
    iops: int | None
    throughput: int | None


def volume_type(name: str | None) -> VolumeType:
    """The type ``name`` (gp2 when not given); InvalidParameterValue for an unknown one."""
    key = name or DEFAULT_TYPE
    if key not in TYPES:
        raise errors.InvalidParameterValue(
            value=key, name="volumeType", reason=f"Valid values: {', '.join(TYPES)}."
        )
    return TYPES[key]


def check_size(vtype: VolumeType, size_gib: int) -> None:
    if not vtype.min_gib <= size_gib <= vtype.max_gib:
        raise errors.InvalidParameterValue(
            value=size_gib,
            name="size",
            reason=f"{vtype.name} volumes must be at least {vtype.min_gib} GiB and at most "
            f"{vtype.max_gib} GiB in size.",
        )


def performance(vtype: VolumeType, size_gib: int, iops: int | None, throughput: int | None) -> Performance:
    """Check the request's IOPS and throughput for the type and size (already checked)."""
    if iops is not None and vtype.iops is None:
        raise errors.InvalidParameterCombination(
            reason=f"The parameter iops is not supported for {vtype.name} volumes."
        )
    if iops is None and vtype.iops_required:
        raise errors.InvalidParameterCombination(
            reason=f"The parameter iops must be specified for {vtype.name} volumes."
        )
    if throughput is not None and vtype.throughput is None:
        raise errors.InvalidParameterCombination(
            reason="throughput can only be specified for volumeType gp3."
        )
    if vtype.iops is None:
        baseline = min(16000, max(100, 3 * size_gib)) if vtype.name == "gp2" else None
        return Performance(vtype.name, baseline, None)
    iops = vtype.default_iops if iops is None else iops
    assert iops is not None
    low, high = vtype.iops
    if not low <= iops <= high:
        raise errors.InvalidParameterValue(
            value=iops, name="iops", reason=f"{vtype.name} volumes take {low} to {high} IOPS."
        )
    if vtype.iops_per_gib and iops > max(low if vtype.name == "gp3" else 0, vtype.iops_per_gib * size_gib):
        raise errors.InvalidParameterValue(
            f"Iops to volume size ratio of {iops / size_gib:f} is too high; maximum is {vtype.iops_per_gib}"
        )
    if vtype.throughput is None:
        return Performance(vtype.name, iops, None)
    throughput = vtype.default_throughput if throughput is None else throughput
    assert throughput is not None
    low, high = vtype.throughput
    if not low <= throughput <= high:
        raise errors.InvalidParameterValue(
            value=throughput, name="throughput", reason=f"Valid range: {low} - {high} MiB/s."
        )
    if throughput > low and throughput / iops > GP3_MIB_PER_IOPS:
        raise errors.InvalidParameterValue(
            f"Throughput (MiBps) to iops ratio of {throughput / iops:f} is too high; "
            f"maximum is {GP3_MIB_PER_IOPS:f} MiBps per iops"
        )
    return Performance(vtype.name, iops, throughput)


@dataclass(frozen=True)
class Current:
    """What a volume is now, as ModifyVolume starts from it."""

    size_gib: int
    volume_type: str
    iops: int | None
    throughput: int | None


def modification(
    current: Current, size: int | None, type_name: str | None, iops: int | None, throughput: int | None
) -> tuple[int, Performance]:
    """The target size and performance of a ModifyVolume request (EC2's rules).

    Unchanged members keep the volume's values: its IOPS while the type still takes
    provisioned IOPS (a gp3 volume moved to io1 keeps its 3,000), its throughput while
    it stays gp3. Size grows only: ``InvalidParameterValue`` "New size cannot be
    smaller than existing size" [aws/aws-cli#4216]. The target is checked as
    CreateVolume checks a new volume (ranges, ratios, iops for io1/io2)."""
    if size is not None and size < current.size_gib:
        raise errors.InvalidParameterValue("New size cannot be smaller than existing size")
    target_size = current.size_gib if size is None else size
    vtype = volume_type(type_name or current.volume_type)
    keeps_iops = vtype.iops is not None and TYPES[current.volume_type].iops is not None
    if iops is None and keeps_iops and current.iops is not None:
        iops = current.iops
    if throughput is None and vtype.throughput is not None and current.volume_type == vtype.name:
        throughput = current.throughput
    check_size(vtype, target_size)
    return target_size, performance(vtype, target_size, iops, throughput)
