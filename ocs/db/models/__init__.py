"""Every mapped table of OCS, one module per resource family.

A new family (instances, images, networks ...) is a new module here, imported
below so that :data:`Base.metadata` is complete, plus a new migration in
``ocs/db/migrations/versions``. The test ``test_models_match_migrations`` fails
until both agree.
"""

from __future__ import annotations

from ocs.db.models.accounts import (
    ACCESS_KEY_ACTIVE,
    ACCESS_KEY_INACTIVE,
    ACCESS_KEY_STATUSES,
    AccessKey,
    Account,
)
from ocs.db.models.base import NAMING_CONVENTION, Base, UtcDateTime, utcnow
from ocs.db.models.compute import Host, Instance, Quota, Reservation, ServiceRecord  # noqa: F401
from ocs.db.models.gce import GceInstance, GceOperation, GceServiceKey  # noqa: F401
from ocs.db.models.gce_network import GceAddress, GceFirewall, GceNetwork, GceSubnetwork  # noqa: F401
from ocs.db.models.images import Image, ImageBlockDevice, ImageLaunchPermission  # noqa: F401
from ocs.db.models.instance_types import InstanceType  # noqa: F401
from ocs.db.models.interfaces import ElasticAddress, InterfaceAddress, NetworkInterface  # noqa: F401
from ocs.db.models.keypairs import KeyPair  # noqa: F401
from ocs.db.models.network import (  # noqa: F401
    AccountNetwork,
    CustomerGateway,
    DhcpOptions,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    Vpc,
)
from ocs.db.models.routing import (  # noqa: F401
    InternetGateway,
    NatGateway,
    Route,
    RouteTable,
    RouteTableAssociation,
)
from ocs.db.models.tags import ClientToken, Tag
from ocs.db.models.volumes import (  # noqa: F401
    Snapshot,
    SnapshotPermission,
    Volume,
    VolumeAttachment,
    VolumeModification,
)

__all__ = [
    "ACCESS_KEY_ACTIVE",
    "ACCESS_KEY_INACTIVE",
    "ACCESS_KEY_STATUSES",
    "NAMING_CONVENTION",
    "AccessKey",
    "Account",
    "ClientToken",
    "Tag",
    "Base",
    "UtcDateTime",
    "utcnow",
]
