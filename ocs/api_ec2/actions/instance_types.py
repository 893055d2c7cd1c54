"""DescribeInstanceTypes: the sizes this cloud offers, as EC2's ``InstanceTypeInfo``.

Instance types are the operator's (``ocs-manage instance-type``) and the same for
every account. What each field says, and why:

* ``Hypervisor`` is ``nitro`` for every type: OCS runs guests on KVM/QEMU, and
  ``nitro`` is what EC2 reports for its KVM-based types (``xen`` would promise
  Xen devices that OCS guests do not have).
* The guest's devices are virtio, neither ENA nor NVMe: ``EnaSupport`` and
  ``EbsInfo.NvmeSupport`` say ``unsupported``; ``EbsOptimizedSupport`` too (there is
  no separate storage network to optimise for).
* Only on-demand usage, EBS-style roots, HVM, legacy BIOS boot, no instance
  store, no IPv6, one network card; features OCS does not have (hibernation,
  dedicated hosts, auto recovery, enclaves, NitroTPM, PHC, reboot migration) are
  reported unsupported.
* vCPUs, threads per core, memory, network limits and clock speed come from the
  type's row; ``ValidCores`` lists 1 up to the default core count.
* ``PlacementGroupInfo`` repeats EC2's strategies (burstable types: partition and
  spread; others also cluster).

Unknown names in ``InstanceTypes``: ``InvalidInstanceType`` "The following
supplied instance types do not exist: [a, b]" (scylladb/scylla-cluster-tests#12419
quoting EC2). Paginated by name, 5 to 100 per page, 100 by default (the model's
``DITMaxResults``), so ``get_paginator('describe_instance_types')`` yields each type
once.
"""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination
from ocs.api_ec2.context import RequestContext
from ocs.db import instance_types as repo
from ocs.db.models.instance_types import InstanceType

ACTION = "DescribeInstanceTypes"
HYPERVISOR = "nitro"
MAX_EBS_ATTACHMENTS = 27


def _vcpu_info(row: InstanceType) -> dict[str, Any]:
    threads = row.threads_per_core
    cores = max(1, row.vcpus // threads)
    return {
        "DefaultVCpus": row.vcpus,
        "DefaultCores": cores,
        "DefaultThreadsPerCore": threads,
        "ValidCores": list(range(1, cores + 1)),
        "ValidThreadsPerCore": list(range(1, threads + 1)),
    }


def _network_info(row: InstanceType) -> dict[str, Any]:
    return {
        "NetworkPerformance": row.network_performance,
        "MaximumNetworkInterfaces": row.max_network_interfaces,
        "MaximumNetworkCards": 1,
        "DefaultNetworkCardIndex": 0,
        "NetworkCards": [
            {
                "NetworkCardIndex": 0,
                "NetworkPerformance": row.network_performance,
                "MaximumNetworkInterfaces": row.max_network_interfaces,
            }
        ],
        "Ipv4AddressesPerInterface": row.ipv4_addresses_per_interface,
        "Ipv6AddressesPerInterface": 0,
        "Ipv6Supported": False,
        "EnaSupport": "unsupported",
        "EfaSupported": False,
        "EncryptionInTransitSupported": False,
        "EnaSrdSupported": False,
    }


def _processor_info(row: InstanceType) -> dict[str, Any]:
    info: dict[str, Any] = {"SupportedArchitectures": [row.architecture]}
    if row.sustained_clock_speed_ghz is not None:
        info["SustainedClockSpeedInGhz"] = row.sustained_clock_speed_ghz
    return info


def instance_type_info(row: InstanceType) -> dict[str, Any]:
    """The ``InstanceTypeInfo`` of one instance type."""
    return {
        "InstanceType": row.name,
        "CurrentGeneration": row.current_generation,
        "FreeTierEligible": row.free_tier_eligible,
        "SupportedUsageClasses": ["on-demand"],
        "SupportedRootDeviceTypes": ["ebs"],
        "SupportedVirtualizationTypes": ["hvm"],
        "BareMetal": False,
        "Hypervisor": HYPERVISOR,
        "ProcessorInfo": _processor_info(row),
        "VCpuInfo": _vcpu_info(row),
        "MemoryInfo": {"SizeInMiB": row.memory_mib},
        "InstanceStorageSupported": False,
        "EbsInfo": {
            "EbsOptimizedSupport": "unsupported",
            "EncryptionSupport": "unsupported",
            "NvmeSupport": "unsupported",
            "MaximumEbsAttachments": MAX_EBS_ATTACHMENTS,
            "AttachmentLimitType": "shared",
        },
        "NetworkInfo": _network_info(row),
        "PlacementGroupInfo": {
            "SupportedStrategies": ["partition", "spread"]
            if row.burstable
            else ["cluster", "partition", "spread"]
        },
        "HibernationSupported": False,
        "BurstablePerformanceSupported": row.burstable,
        "DedicatedHostsSupported": False,
        "AutoRecoverySupported": False,
        "SupportedBootModes": ["legacy-bios"],
        "NitroEnclavesSupport": "unsupported",
        "NitroTpmSupport": "unsupported",
        "PhcSupport": "unsupported",
        "RebootMigrationSupport": "unsupported",
        "SupportedInRegion": True,
    }


def describe_instance_types(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    rows = repo.list_instance_types(ctx.session)
    wanted = list(dict.fromkeys(params.get("InstanceTypes") or []))
    if wanted:
        known = {row.name for row in rows}
        missing = [name for name in wanted if name not in known]
        if missing:
            raise errors.InvalidParameterValue(
                f"The following supplied instance types do not exist: [{', '.join(missing)}]",
                code="InvalidInstanceType",
            )
        rows = [row for row in rows if row.name in set(wanted)]
    items = filters.filter_action(ACTION, [instance_type_info(row) for row in rows], params.get("Filters"))
    scope = pagination.token_scope(ACTION, ctx.account_id)
    page, token = pagination.paginate_action(ACTION, items, params, key="InstanceType", scope=scope)
    out: dict[str, Any] = {"InstanceTypes": page}
    if token:
        out["NextToken"] = token
    return out


ACTIONS = {ACTION: describe_instance_types}
