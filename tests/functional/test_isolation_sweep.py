"""Isolation sweep: another account's resources look exactly like resources that do not exist.

Account A (the owner) makes one of every kind of resource: key pair, VPC,
subnet, security group with rules, a private and a public image, an instance,
and tags on all of them. Account B (the stranger) then calls every
implemented action that takes a resource ID or name with A's, and, for each,
the same call with a fresh random ID of the same kind. The two answers must be
the same (status, Code, and Message but for the ID itself), so nothing tells B
that A's resource exists, and nothing of A's changes.

EC2's documented exceptions, asserted as EC2 behaves:

* a public image is visible to everyone (DescribeImages, RunInstances), but
  the owner-only actions answer ``AuthFailure`` (DeregisterImage,
  Describe/Modify/ResetImageAttribute);
* AMI IDs are one namespace shared by all accounts (public and shared
  images), and EC2 tells a private image of another account from a missing
  one in two places, which OCS follows: DescribeImages leaves out an image the
  caller may not see instead of failing, while a never-registered ID is
  ``InvalidAMIID.NotFound`` (the DescribeImages reference: "If you specify an
  AMI ID for which you do not have access, it will not be included in the
  returned results"); RunInstances answers ``AuthFailure`` "Not authorized for
  images: [ami-x]" (ansible/lightbulb#331, hashicorp/otto#68). Every other
  action on such an image answers ``InvalidAMIID.NotFound``, as for a missing one.

A completeness test fails when an action joins the dispatch table without a
place in this sweep.
"""

from __future__ import annotations

import collections
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ocs import ids
from ocs.api_ec2.actions import HANDLERS
from tests.framework.raw import Reply, call

FAST = {"Delay": 0.2, "MaxAttempts": 150}
_REQUEST_ID = re.compile(rb"<requestId>[^<]*</requestId>|<RequestID>[^<]*</RequestID>")

Params = Callable[[str], dict[str, str]]


@dataclass(frozen=True)
class World:
    """What the owner made, and what the stranger owns (for actions that need both)."""

    owner: object
    stranger: object
    ids: dict[str, str]  # kind -> A's ID of that kind
    names: dict[str, str]  # key_pair / security_group / image -> A's name
    b: dict[str, str]  # the stranger's own resources


@pytest.fixture(scope="module")
def world(cloud, ec2) -> World:
    owner = cloud.create_account(f"iso-owner-{secrets.token_hex(3)}")
    stranger = cloud.create_account(f"iso-stranger-{secrets.token_hex(3)}")
    a, b = cloud.client(owner), cloud.client(stranger)
    [demo] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    key = a.create_key_pair(KeyName="iso-key")
    vpc = a.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = a.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = a.create_security_group(GroupName="iso-sg", Description="owned by A", VpcId=vpc)["GroupId"]
    rule = a.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        ],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    a.create_security_group(GroupName="iso-default-sg", Description="in the default VPC of A")
    private = a.register_image(Name="iso-private", ImageLocation=demo["ImageLocation"])["ImageId"]
    public = a.register_image(Name="iso-public", ImageLocation=demo["ImageLocation"])["ImageId"]
    a.modify_image_attribute(ImageId=public, LaunchPermission={"Add": [{"Group": "all"}]})
    instance = a.run_instances(
        ImageId=private,
        MinCount=1,
        MaxCount=1,
        InstanceType="t2.micro",
        KeyName="iso-key",
        SubnetId=subnet,
        SecurityGroupIds=[group],
    )["Instances"][0]["InstanceId"]
    a.get_waiter("instance_running").wait(InstanceIds=[instance], WaiterConfig=FAST)
    eni = a.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    [primary] = a.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]
    )["NetworkInterfaces"]
    igw = a.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    a.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)  # an elastic IP needs it
    allocation = a.allocate_address(Domain="vpc")["AllocationId"]
    association = a.associate_address(AllocationId=allocation, InstanceId=instance)["AssociationId"]
    owned = {
        "instance": instance,
        "vpc": vpc,
        "subnet": subnet,
        "security_group": group,
        "security_group_rule": rule,
        "key_pair": key["KeyPairId"],
        "image": private,
        "public_image": public,
        "network_interface": eni,
        "network_interface_attachment": primary["Attachment"]["AttachmentId"],
        "allocation": allocation,
        "association": association,
    }
    table = a.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    table_association = a.associate_route_table(RouteTableId=table, SubnetId=subnet)["AssociationId"]
    a.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    nat = a.create_nat_gateway(SubnetId=subnet, ConnectivityType="private")["NatGateway"]["NatGatewayId"]
    zone = a.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailabilityZone"]
    volume = a.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    a.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=FAST)
    snapshot = a.create_snapshot(VolumeId=volume)["SnapshotId"]
    a.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot], WaiterConfig=FAST)
    dopt = a.create_dhcp_options(DhcpConfigurations=[{"Key": "domain-name", "Values": ["a.example"]}])
    cgw = a.create_customer_gateway(Type="ipsec.1", IpAddress="198.51.100.7", BgpAsn=65001)
    owned.update(
        dhcp_options=dopt["DhcpOptions"]["DhcpOptionsId"],
        customer_gateway=cgw["CustomerGateway"]["CustomerGatewayId"],
        internet_gateway=igw,
        route_table=table,
        route_table_association=table_association,
        nat_gateway=nat,
        volume=volume,
        snapshot=snapshot,
    )
    a.create_tags(
        Resources=[v for k, v in owned.items() if k not in UNTAGGABLE],
        Tags=[{"Key": "owner", "Value": "A"}],
    )
    b_group = b.create_security_group(GroupName="b-sg", Description="owned by B")["GroupId"]
    b_vpc = b.describe_vpcs()["Vpcs"][0]["VpcId"]
    [b_main] = b.describe_route_tables()["RouteTables"]
    [b_subnet] = b.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][:1]
    b_eni = b.create_network_interface(SubnetId=b_subnet["SubnetId"])["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    b_allocation = b.allocate_address(Domain="vpc")["AllocationId"]
    b_volume = b.create_volume(AvailabilityZone=b_subnet["AvailabilityZone"], Size=1)["VolumeId"]
    b.get_waiter("volume_available").wait(VolumeIds=[b_volume], WaiterConfig=FAST)
    return World(
        owner,
        stranger,
        owned,
        {"key_pair": "iso-key", "security_group": "iso-default-sg", "image": "iso-private"},
        {
            "security_group": b_group,
            "image_location": demo["ImageLocation"],
            "public_image": demo["ImageId"],
            "vpc": b_vpc,
            "subnet": b_subnet["SubnetId"],
            "internet_gateway": b.create_internet_gateway()["InternetGateway"]["InternetGatewayId"],
            "route_table": b_main["RouteTableId"],
            "route_table_association": b_main["Associations"][0]["RouteTableAssociationId"],
            "network_interface": b_eni,
            "allocation": b_allocation,
            "zone": zone,
            "volume": b_volume,
        },
    )


#: Kinds of A's IDs that carry no tags.
UNTAGGABLE = ("security_group_rule", "network_interface_attachment", "association", "route_table_association")


def normalized(reply: Reply, target: str) -> tuple[int, str, str] | tuple[int, bytes]:
    """What the stranger learns from a reply, with the ID it asked about masked."""
    if reply.status == 200:
        return reply.status, _REQUEST_ID.sub(b"", reply.body).replace(target.encode(), b"<ID>")
    code, message, _ = reply.error()
    return reply.status, code, message.replace(target, "<ID>")


# --- the cases: (action, kind of A's resource, parameters for an ID) -------------------------------

SG_RULE = {"IpProtocol": "tcp", "FromPort": "22", "ToPort": "22", "CidrIpv4": "10.0.0.0/8"}


def perm(prefix: str = "IpPermissions.1.") -> dict[str, str]:
    return {
        prefix + "IpProtocol": "tcp",
        prefix + "FromPort": "22",
        prefix + "ToPort": "22",
        prefix + "IpRanges.1.CidrIp": "10.0.0.0/8",
    }


def cases(w: World) -> list[tuple[str, str, Params]]:
    """Every (action, kind, params) the stranger tries; ``w`` gives B's own resources."""
    b_sg = w.b["security_group"]
    public = w.b["public_image"]
    b_eni, b_alloc, b_subnet = w.b["network_interface"], w.b["allocation"], w.b["subnet"]
    tag = {"Tag.1.Key": "owner", "Tag.1.Value": "B"}
    out: list[tuple[str, str, Params]] = [
        # instances
        ("DescribeInstances", "instance", lambda i: {"InstanceId.1": i}),
        ("DescribeInstanceStatus", "instance", lambda i: {"InstanceId.1": i}),
        ("DescribeInstanceAttribute", "instance", lambda i: {"InstanceId": i, "Attribute": "instanceType"}),
        (
            "ModifyInstanceAttribute",
            "instance",
            lambda i: {"InstanceId": i, "DisableApiTermination.Value": "true"},
        ),
        ("ResetInstanceAttribute", "instance", lambda i: {"InstanceId": i, "Attribute": "sourceDestCheck"}),
        ("GetConsoleOutput", "instance", lambda i: {"InstanceId": i}),
        ("GetPasswordData", "instance", lambda i: {"InstanceId": i}),
        ("StopInstances", "instance", lambda i: {"InstanceId.1": i}),
        ("StartInstances", "instance", lambda i: {"InstanceId.1": i}),
        ("RebootInstances", "instance", lambda i: {"InstanceId.1": i}),
        ("TerminateInstances", "instance", lambda i: {"InstanceId.1": i}),
        # VPCs and subnets
        ("DescribeVpcs", "vpc", lambda i: {"VpcId.1": i}),
        ("DescribeVpcAttribute", "vpc", lambda i: {"VpcId": i, "Attribute": "enableDnsSupport"}),
        ("ModifyVpcAttribute", "vpc", lambda i: {"VpcId": i, "EnableDnsSupport.Value": "false"}),
        ("DeleteVpc", "vpc", lambda i: {"VpcId": i}),
        ("CreateSubnet", "vpc", lambda i: {"VpcId": i, "CidrBlock": "10.9.2.0/24"}),
        ("CreateSecurityGroup", "vpc", lambda i: {"VpcId": i, "GroupName": "x", "GroupDescription": "x"}),
        ("DescribeSubnets", "subnet", lambda i: {"SubnetId.1": i}),
        ("ModifySubnetAttribute", "subnet", lambda i: {"SubnetId": i, "MapPublicIpOnLaunch.Value": "true"}),
        ("DeleteSubnet", "subnet", lambda i: {"SubnetId": i}),
        # security groups and their rules
        ("DescribeSecurityGroups", "security_group", lambda i: {"GroupId.1": i}),
        ("DeleteSecurityGroup", "security_group", lambda i: {"GroupId": i}),
        ("AuthorizeSecurityGroupIngress", "security_group", lambda i: {"GroupId": i, **perm()}),
        ("AuthorizeSecurityGroupEgress", "security_group", lambda i: {"GroupId": i, **perm()}),
        ("RevokeSecurityGroupIngress", "security_group", lambda i: {"GroupId": i, **perm()}),
        ("RevokeSecurityGroupEgress", "security_group", lambda i: {"GroupId": i, **perm()}),
        (
            "UpdateSecurityGroupRuleDescriptionsIngress",
            "security_group",
            lambda i: {"GroupId": i, **perm(), "IpPermissions.1.IpRanges.1.Description": "x"},
        ),
        (
            "UpdateSecurityGroupRuleDescriptionsEgress",
            "security_group",
            lambda i: {"GroupId": i, **perm(), "IpPermissions.1.IpRanges.1.Description": "x"},
        ),
        (
            "ModifySecurityGroupRules",
            "security_group_rule",
            lambda i: {
                "GroupId": b_sg,
                "SecurityGroupRule.1.SecurityGroupRuleId": i,
                **{f"SecurityGroupRule.1.SecurityGroupRule.{k}": v for k, v in SG_RULE.items()},
            },
        ),
        ("DescribeSecurityGroupRules", "security_group_rule", lambda i: {"SecurityGroupRuleId.1": i}),
        (
            "RevokeSecurityGroupIngress",
            "security_group_rule",
            lambda i: {"GroupId": b_sg, "SecurityGroupRuleId.1": i},
        ),
        (
            "RevokeSecurityGroupEgress",
            "security_group_rule",
            lambda i: {"GroupId": b_sg, "SecurityGroupRuleId.1": i},
        ),
        (
            "AuthorizeSecurityGroupIngress",
            "security_group",
            lambda i: {  # A's group as a source
                "GroupId": b_sg,
                "IpPermissions.1.IpProtocol": "tcp",
                "IpPermissions.1.FromPort": "1",
                "IpPermissions.1.ToPort": "2",
                "IpPermissions.1.Groups.1.GroupId": i,
            },
        ),
        # key pairs
        ("DescribeKeyPairs", "key_pair", lambda i: {"KeyPairId.1": i}),
        ("DeleteKeyPair", "key_pair", lambda i: {"KeyPairId": i}),
        # images (A's private one; the public one is asserted separately)
        ("DescribeImageAttribute", "image", lambda i: {"ImageId": i, "Attribute": "description"}),
        ("ModifyImageAttribute", "image", lambda i: {"ImageId": i, "Description.Value": "B was here"}),
        ("ResetImageAttribute", "image", lambda i: {"ImageId": i, "Attribute": "launchPermission"}),
        ("DeregisterImage", "image", lambda i: {"ImageId": i}),
        # launching with A's resources
        (
            "RunInstances",
            "subnet",
            lambda i: {"ImageId": public, "MinCount": "1", "MaxCount": "1", "SubnetId": i},
        ),
        (
            "RunInstances",
            "security_group",
            lambda i: {"ImageId": public, "MinCount": "1", "MaxCount": "1", "SecurityGroupId.1": i},
        ),
        # network interfaces
        ("DescribeNetworkInterfaces", "network_interface", lambda i: {"NetworkInterfaceId.1": i}),
        ("DeleteNetworkInterface", "network_interface", lambda i: {"NetworkInterfaceId": i}),
        (
            "AttachNetworkInterface",
            "network_interface",
            lambda i: {"NetworkInterfaceId": i, "InstanceId": "i-0123456789abcdef0", "DeviceIndex": "1"},
        ),
        (
            "AttachNetworkInterface",
            "instance",
            lambda i: {"NetworkInterfaceId": b_eni, "InstanceId": i, "DeviceIndex": "1"},
        ),
        ("DetachNetworkInterface", "network_interface_attachment", lambda i: {"AttachmentId": i}),
        (
            "AssignPrivateIpAddresses",
            "network_interface",
            lambda i: {"NetworkInterfaceId": i, "SecondaryPrivateIpAddressCount": "1"},
        ),
        (
            "UnassignPrivateIpAddresses",
            "network_interface",
            lambda i: {"NetworkInterfaceId": i, "PrivateIpAddress.1": "10.9.1.4"},
        ),
        (
            "ModifyNetworkInterfaceAttribute",
            "network_interface",
            lambda i: {"NetworkInterfaceId": i, "Description.Value": "B was here"},
        ),
        (
            "ModifyNetworkInterfaceAttribute",
            "security_group",
            lambda i: {"NetworkInterfaceId": b_eni, "SecurityGroupId.1": i},
        ),
        (
            "DescribeNetworkInterfaceAttribute",
            "network_interface",
            lambda i: {"NetworkInterfaceId": i, "Attribute": "description"},
        ),
        (
            "ResetNetworkInterfaceAttribute",
            "network_interface",
            lambda i: {"NetworkInterfaceId": i, "SourceDestCheck": "sourceDestCheck"},
        ),
        ("CreateNetworkInterface", "subnet", lambda i: {"SubnetId": i}),
        (
            "CreateNetworkInterface",
            "security_group",
            lambda i: {"SubnetId": b_subnet, "SecurityGroupId.1": i},
        ),
        # elastic IP addresses
        ("DescribeAddresses", "allocation", lambda i: {"AllocationId.1": i}),
        ("ReleaseAddress", "allocation", lambda i: {"AllocationId": i}),
        ("AssociateAddress", "allocation", lambda i: {"AllocationId": i, "NetworkInterfaceId": b_eni}),
        ("AssociateAddress", "instance", lambda i: {"AllocationId": b_alloc, "InstanceId": i}),
        (
            "AssociateAddress",
            "network_interface",
            lambda i: {"AllocationId": b_alloc, "NetworkInterfaceId": i},
        ),
        ("DisassociateAddress", "association", lambda i: {"AssociationId": i}),
    ]
    b_vpc, b_subnet, b_igw = w.b["vpc"], w.b["subnet"], w.b["internet_gateway"]
    b_rtb, b_assoc = w.b["route_table"], w.b["route_table_association"]
    route = {"DestinationCidrBlock": "8.8.8.0/24"}
    out += [
        # internet gateways
        ("DescribeInternetGateways", "internet_gateway", lambda i: {"InternetGatewayId.1": i}),
        ("AttachInternetGateway", "internet_gateway", lambda i: {"InternetGatewayId": i, "VpcId": b_vpc}),
        ("AttachInternetGateway", "vpc", lambda i: {"InternetGatewayId": b_igw, "VpcId": i}),
        ("DetachInternetGateway", "internet_gateway", lambda i: {"InternetGatewayId": i, "VpcId": b_vpc}),
        ("DetachInternetGateway", "vpc", lambda i: {"InternetGatewayId": b_igw, "VpcId": i}),
        ("DeleteInternetGateway", "internet_gateway", lambda i: {"InternetGatewayId": i}),
        # route tables, associations, routes
        ("DescribeRouteTables", "route_table", lambda i: {"RouteTableId.1": i}),
        ("CreateRouteTable", "vpc", lambda i: {"VpcId": i}),
        ("DeleteRouteTable", "route_table", lambda i: {"RouteTableId": i}),
        ("AssociateRouteTable", "route_table", lambda i: {"RouteTableId": i, "SubnetId": b_subnet}),
        ("AssociateRouteTable", "subnet", lambda i: {"RouteTableId": b_rtb, "SubnetId": i}),
        ("DisassociateRouteTable", "route_table_association", lambda i: {"AssociationId": i}),
        (
            "ReplaceRouteTableAssociation",
            "route_table_association",
            lambda i: {"AssociationId": i, "RouteTableId": b_rtb},
        ),
        (
            "ReplaceRouteTableAssociation",
            "route_table",
            lambda i: {"AssociationId": b_assoc, "RouteTableId": i},
        ),
        ("CreateRoute", "route_table", lambda i: {"RouteTableId": i, **route, "GatewayId": b_igw}),
        ("CreateRoute", "internet_gateway", lambda i: {"RouteTableId": b_rtb, **route, "GatewayId": i}),
        ("CreateRoute", "nat_gateway", lambda i: {"RouteTableId": b_rtb, **route, "NatGatewayId": i}),
        ("CreateRoute", "instance", lambda i: {"RouteTableId": b_rtb, **route, "InstanceId": i}),
        ("ReplaceRoute", "route_table", lambda i: {"RouteTableId": i, **route, "GatewayId": b_igw}),
        ("DeleteRoute", "route_table", lambda i: {"RouteTableId": i, **route}),
        # NAT gateways
        ("DescribeNatGateways", "nat_gateway", lambda i: {"NatGatewayId.1": i}),
        ("DeleteNatGateway", "nat_gateway", lambda i: {"NatGatewayId": i}),
        ("CreateNatGateway", "subnet", lambda i: {"SubnetId": i, "ConnectivityType": "private"}),
        # volumes and snapshots
        ("DescribeVolumes", "volume", lambda i: {"VolumeId.1": i}),
        ("DeleteVolume", "volume", lambda i: {"VolumeId": i}),
        ("CreateSnapshot", "volume", lambda i: {"VolumeId": i}),
        ("DescribeSnapshots", "snapshot", lambda i: {"SnapshotId.1": i}),
        ("DeleteSnapshot", "snapshot", lambda i: {"SnapshotId": i}),
        ("CreateVolume", "snapshot", lambda i: {"SnapshotId": i, "AvailabilityZone": w.b["zone"]}),
        (
            "AttachVolume",
            "volume",
            lambda i: {"VolumeId": i, "InstanceId": w.ids["instance"], "Device": "/dev/sdf"},
        ),
        (
            "AttachVolume",
            "instance",
            lambda i: {"VolumeId": w.b["volume"], "InstanceId": i, "Device": "/dev/sdf"},
        ),
        ("DetachVolume", "volume", lambda i: {"VolumeId": i}),
        ("ModifyVolume", "volume", lambda i: {"VolumeId": i, "Size": "5"}),
        ("DescribeVolumesModifications", "volume", lambda i: {"VolumeId.1": i}),
        ("DescribeVolumeStatus", "volume", lambda i: {"VolumeId.1": i}),
        ("DescribeVolumeAttribute", "volume", lambda i: {"VolumeId": i, "Attribute": "autoEnableIO"}),
        ("ModifyVolumeAttribute", "volume", lambda i: {"VolumeId": i, "AutoEnableIO.Value": "true"}),
        ("CopySnapshot", "snapshot", lambda i: {"SourceSnapshotId": i, "SourceRegion": "us-east-1"}),
        ("CreateSnapshots", "instance", lambda i: {"InstanceSpecification.InstanceId": i}),
        # EBS-backed images and block device mappings
        ("CreateImage", "instance", lambda i: {"InstanceId": i, "Name": "b-image"}),
        (
            "RegisterImage",
            "snapshot",
            lambda i: {
                "Name": "b-ebs",
                "RootDeviceName": "/dev/sda1",
                "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
                "BlockDeviceMapping.1.Ebs.SnapshotId": i,
            },
        ),
        (
            "RunInstances",
            "snapshot",
            lambda i: {
                "ImageId": w.b["public_image"],
                "MinCount": "1",
                "MaxCount": "1",
                "BlockDeviceMapping.1.DeviceName": "/dev/sdf",
                "BlockDeviceMapping.1.Ebs.SnapshotId": i,
            },
        ),
        (
            "DescribeSnapshotAttribute",
            "snapshot",
            lambda i: {"SnapshotId": i, "Attribute": "createVolumePermission"},
        ),
        (
            "ModifySnapshotAttribute",
            "snapshot",
            lambda i: {"SnapshotId": i, "CreateVolumePermission.Add.1.Group": "all"},
        ),
        (
            "ResetSnapshotAttribute",
            "snapshot",
            lambda i: {"SnapshotId": i, "Attribute": "createVolumePermission"},
        ),
        # DHCP options sets
        ("DescribeDhcpOptions", "dhcp_options", lambda i: {"DhcpOptionsId.1": i}),
        ("DeleteDhcpOptions", "dhcp_options", lambda i: {"DhcpOptionsId": i}),
        ("AssociateDhcpOptions", "dhcp_options", lambda i: {"DhcpOptionsId": i, "VpcId": b_vpc}),
        ("AssociateDhcpOptions", "vpc", lambda i: {"DhcpOptionsId": "default", "VpcId": i}),
        # customer gateways
        ("DescribeCustomerGateways", "customer_gateway", lambda i: {"CustomerGatewayId.1": i}),
        ("DeleteCustomerGateway", "customer_gateway", lambda i: {"CustomerGatewayId": i}),
    ]
    for kind in (
        "instance",
        "vpc",
        "subnet",
        "security_group",
        "key_pair",
        "image",
        "internet_gateway",
        "route_table",
        "nat_gateway",
        "network_interface",
        "allocation",
        "volume",
        "snapshot",
        "dhcp_options",
        "customer_gateway",
    ):
        out.append(("CreateTags", kind, lambda i: {"ResourceId.1": i, **tag}))
        out.append(("DeleteTags", kind, lambda i: {"ResourceId.1": i, "Tag.1.Key": "owner"}))
    return out


#: Name-addressed calls: (action, kind of name, params for a name).
def named_cases(w: World) -> list[tuple[str, str, Params]]:
    public = w.b["public_image"]
    return [
        ("DescribeKeyPairs", "key_pair", lambda n: {"KeyName.1": n}),
        ("DeleteKeyPair", "key_pair", lambda n: {"KeyName": n}),
        (
            "RunInstances",
            "key_pair",
            lambda n: {"ImageId": public, "MinCount": "1", "MaxCount": "1", "KeyName": n},
        ),
        ("DescribeSecurityGroups", "security_group", lambda n: {"GroupName.1": n}),
        ("DeleteSecurityGroup", "security_group", lambda n: {"GroupName": n}),
        (
            "RunInstances",
            "security_group",
            lambda n: {"ImageId": public, "MinCount": "1", "MaxCount": "1", "SecurityGroup.1": n},
        ),
        (
            "RegisterImage",
            "image",
            lambda n: {"Name": "b-copy", "ImageLocation": f"{w.owner.account_id}/{n}"},
        ),
    ]


#: Actions that take no resource of another account, and why.
NO_FOREIGN_IDS = {
    "CreateDefaultVpc": "acts on the caller's own default VPC",
    "CreateKeyPair": "names are per account: B may reuse A's name (test_names_are_per_account)",
    "ImportKeyPair": "names are per account: B may reuse A's name (test_names_are_per_account)",
    "CreateVpc": "takes no resource",
    "CreateInternetGateway": "takes no resource",
    "DescribeAccountAttributes": "the caller's own attributes",
    "DescribeAvailabilityZones": "zones are the region's",
    "DescribeRegions": "regions are the cloud's",
    "DescribeInstanceTypes": "instance types are the cloud's",
    "DescribeTags": "takes IDs only as filters (test_listings_and_filters_show_nothing_of_a)",
    "DescribeImages": "documented exception (test_images_follow_ec2s_visibility)",
    "AllocateAddress": "takes no resource",
    "CreateDhcpOptions": "takes no resource",
    "CreateCustomerGateway": "takes no resource",
}


#: Actions EC2 answers with success for an ID that does not exist, so for A's too.
SUCCEEDS_ANYWAY = {
    "DeleteKeyPair": "Return true even when no such key pair exists (boto/boto3#865)",
}


def test_every_action_is_in_the_sweep(world):
    swept = {action for action, _, _ in cases(world) + named_cases(world)}
    missing = sorted(set(HANDLERS) - swept - set(NO_FOREIGN_IDS))
    assert not missing, f"add these actions to the isolation sweep (or to NO_FOREIGN_IDS): {missing}"


def test_foreign_ids_look_exactly_like_missing_ones(cloud, world):
    mismatches = []
    for action, kind, params in cases(world):
        theirs = world.ids[kind]
        fresh = ids.new_id(kind)
        got = call(cloud, world.stranger, action, **params(theirs))
        expected = call(cloud, world.stranger, action, **params(fresh))
        assert got.status != 200 or action in SUCCEEDS_ANYWAY, f"{action} succeeded on A's {kind}"
        assert action in SUCCEEDS_ANYWAY or "<ID>" in normalized(expected, fresh)[2], (action, expected.text)
        if normalized(got, theirs) != normalized(expected, fresh):
            mismatches.append((action, kind, normalized(got, theirs), normalized(expected, fresh)))
    assert not mismatches, "\n".join(map(repr, mismatches))


def test_foreign_names_look_exactly_like_missing_ones(cloud, world):
    mismatches = []
    for action, kind, params in named_cases(world):
        theirs = world.names[kind]
        fresh = f"no-such-{secrets.token_hex(4)}"
        got = normalized(call(cloud, world.stranger, action, **params(theirs)), theirs)
        expected = normalized(call(cloud, world.stranger, action, **params(fresh)), fresh)
        assert action in SUCCEEDS_ANYWAY or "<ID>" in expected[2], (action, expected)
        if got != expected:
            mismatches.append((action, kind, got, expected))
    assert not mismatches, "\n".join(map(repr, mismatches))


def test_describe_with_a_foreign_id_fails_with_not_found(cloud, world):
    """Not an empty answer: EC2 names the missing ID (InvalidInstanceID.NotFound ...)."""
    for action, kind, member in (
        ("DescribeInstances", "instance", "InstanceId.1"),
        ("DescribeVpcs", "vpc", "VpcId.1"),
        ("DescribeSubnets", "subnet", "SubnetId.1"),
        ("DescribeSecurityGroups", "security_group", "GroupId.1"),
        ("DescribeKeyPairs", "key_pair", "KeyPairId.1"),
        ("DescribeNetworkInterfaces", "network_interface", "NetworkInterfaceId.1"),
        ("DescribeAddresses", "allocation", "AllocationId.1"),
        ("DescribeDhcpOptions", "dhcp_options", "DhcpOptionsId.1"),
        ("DescribeCustomerGateways", "customer_gateway", "CustomerGatewayId.1"),
    ):
        reply = call(cloud, world.stranger, action, **{member: world.ids[kind]})
        code, message, _ = reply.error()
        assert (reply.status, code) == (400, ids.KINDS[kind].not_found), action
        assert world.ids[kind] in message


def test_listings_and_filters_show_nothing_of_a(cloud, world):
    b = cloud.client(world.stranger)
    mine = set(world.ids.values())

    def seen(text: str) -> set[str]:
        return {i for i in mine if i in text}

    for action, params in (
        ("DescribeInstances", {}),
        ("DescribeInstanceStatus", {"IncludeAllInstances": "true"}),
        ("DescribeVpcs", {}),
        ("DescribeSubnets", {}),
        ("DescribeSecurityGroups", {}),
        ("DescribeSecurityGroupRules", {}),
        ("DescribeKeyPairs", {}),
        ("DescribeInternetGateways", {}),
        ("DescribeRouteTables", {}),
        ("DescribeNatGateways", {}),
        ("DescribeRouteTables", {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": world.ids["vpc"]}),
        ("DescribeTags", {}),
        ("DescribeNetworkInterfaces", {}),
        ("DescribeAddresses", {}),
        ("DescribeVolumes", {}),
        ("DescribeSnapshots", {}),
        ("DescribeDhcpOptions", {}),
        ("DescribeCustomerGateways", {}),
        ("DescribeSnapshots", {"Owner.1": world.owner.account_id}),
        ("DescribeSnapshots", {"RestorableBy.1": world.stranger.account_id}),
        ("DescribeVolumeStatus", {}),
        ("DescribeVolumesModifications", {}),
        ("DescribeVolumes", {"Filter.1.Name": "snapshot-id", "Filter.1.Value.1": world.ids["snapshot"]}),
        (
            "DescribeNetworkInterfaces",
            {"Filter.1.Name": "attachment.instance-id", "Filter.1.Value.1": world.ids["instance"]},
        ),
        ("DescribeAddresses", {"Filter.1.Name": "instance-id", "Filter.1.Value.1": world.ids["instance"]}),
        ("DescribeTags", {"Filter.1.Name": "resource-id", "Filter.1.Value.1": world.ids["instance"]}),
        ("DescribeSubnets", {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": world.ids["vpc"]}),
        ("DescribeSecurityGroups", {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": world.ids["vpc"]}),
        (
            "DescribeSecurityGroupRules",
            {"Filter.1.Name": "group-id", "Filter.1.Value.1": world.ids["security_group"]},
        ),
        ("DescribeInstances", {"Filter.1.Name": "instance-id", "Filter.1.Value.1": world.ids["instance"]}),
        ("DescribeImages", {"Owner.1": world.owner.account_id}),
    ):
        reply = call(cloud, world.stranger, action, **params)
        assert reply.status == 200, (action, reply.text[:300])
        leaked = seen(reply.text) - {world.ids["public_image"]}
        assert not leaked, (action, params, leaked)
    assert b.describe_tags()["Tags"] == []


def test_images_follow_ec2s_visibility(cloud, world):
    b = cloud.client(world.stranger)
    private, public = world.ids["image"], world.ids["public_image"]
    # The private image is left out of the result (EC2's documented behaviour).
    assert b.describe_images(ImageIds=[private])["Images"] == []
    assert call(cloud, world.stranger, "DescribeImages", **{"ImageId.1": ids.new_id("image")}).error()[0] == (
        "InvalidAMIID.NotFound"
    )
    # Launching it: AuthFailure, as EC2 answers an image that exists but is not shared with you.
    reply = call(cloud, world.stranger, "RunInstances", ImageId=private, MinCount="1", MaxCount="1")
    assert reply.error()[:2] == ("AuthFailure", f"Not authorized for images: [{private}]")
    # The public image is visible and launchable, but owner-only actions fail with AuthFailure.
    [image] = b.describe_images(ImageIds=[public])["Images"]
    assert image["OwnerId"] == world.owner.account_id and image["Public"] is True
    for action, params in (
        ("DescribeImageAttribute", {"ImageId": public, "Attribute": "description"}),
        ("ModifyImageAttribute", {"ImageId": public, "Description.Value": "B was here"}),
        ("ResetImageAttribute", {"ImageId": public, "Attribute": "launchPermission"}),
        ("DeregisterImage", {"ImageId": public}),
    ):
        reply = call(cloud, world.stranger, action, **params)
        assert reply.error()[0] == "AuthFailure", (action, reply.text[:300])
    # Tags on an image one may see are one's own: A never sees B's.
    b.create_tags(Resources=[public], Tags=[{"Key": "seen-by", "Value": "B"}])
    assert [
        t["Key"] for t in b.describe_tags(Filters=[{"Name": "resource-id", "Values": [public]}])["Tags"]
    ] == ["seen-by"]
    a = cloud.client(world.owner)
    mine = a.describe_tags(Filters=[{"Name": "resource-id", "Values": [public]}])["Tags"]
    assert [(t["Key"], t["Value"]) for t in mine] == [("owner", "A")]


def test_names_are_per_account(cloud, world):
    b = cloud.client(world.stranger)
    key = b.create_key_pair(KeyName=world.names["key_pair"])
    assert key["KeyPairId"] != world.ids["key_pair"]
    b.delete_key_pair(KeyPairId=key["KeyPairId"])


def test_nothing_of_a_changed(cloud, world):
    """After the whole sweep (run last in this module), A's resources are as A left them."""
    a = cloud.client(world.owner)
    i = world.ids
    [instance] = a.describe_instances(InstanceIds=[i["instance"]])["Reservations"][0]["Instances"]
    assert instance["State"]["Name"] == "running"
    assert (
        a.describe_instance_attribute(InstanceId=i["instance"], Attribute="disableApiTermination")[
            "DisableApiTermination"
        ]["Value"]
        is False
    )
    assert a.describe_vpc_attribute(VpcId=i["vpc"], Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    assert a.describe_subnets(SubnetIds=[i["subnet"]])["Subnets"][0]["MapPublicIpOnLaunch"] is False
    [group] = a.describe_security_groups(GroupIds=[i["security_group"]])["SecurityGroups"]
    assert [p["FromPort"] for p in group["IpPermissions"]] == [22]
    assert [r["IpRanges"] for r in group["IpPermissions"]] == [[{"CidrIp": "10.0.0.0/8"}]]
    assert a.describe_key_pairs(KeyPairIds=[i["key_pair"]])["KeyPairs"][0]["KeyName"] == "iso-key"
    [image] = a.describe_images(ImageIds=[i["image"]])["Images"]
    assert image["State"] == "available" and "Description" not in image
    [public] = a.describe_images(ImageIds=[i["public_image"]])["Images"]
    assert public["Public"] is True
    [dopt] = a.describe_dhcp_options(DhcpOptionsIds=[i["dhcp_options"]])["DhcpOptions"]
    assert dopt["DhcpConfigurations"] == [{"Key": "domain-name", "Values": [{"Value": "a.example"}]}]
    [cgw] = a.describe_customer_gateways(CustomerGatewayIds=[i["customer_gateway"]])["CustomerGateways"]
    assert cgw["State"] == "available"
    tags = collections.defaultdict(list)
    for t in a.describe_tags()["Tags"]:
        tags[t["ResourceId"]].append((t["Key"], t["Value"]))
    for kind, resource in i.items():
        if kind not in UNTAGGABLE:
            assert tags[resource] == [("owner", "A")], kind
    assert a.describe_internet_gateways(InternetGatewayIds=[i["internet_gateway"]])["InternetGateways"][0][
        "Attachments"
    ] == [{"State": "available", "VpcId": i["vpc"]}]
    [table] = a.describe_route_tables(RouteTableIds=[i["route_table"]])["RouteTables"]
    assert [x["RouteTableAssociationId"] for x in table["Associations"]] == [i["route_table_association"]]
    assert [(r["DestinationCidrBlock"], r.get("GatewayId")) for r in table["Routes"]] == [
        ("10.9.0.0/16", "local"),
        ("0.0.0.0/0", i["internet_gateway"]),
    ]
    assert a.describe_nat_gateways(NatGatewayIds=[i["nat_gateway"]])["NatGateways"][0]["State"] == "available"
    [eni] = a.describe_network_interfaces(NetworkInterfaceIds=[i["network_interface"]])["NetworkInterfaces"]
    assert eni["Description"] == "" and len(eni["PrivateIpAddresses"]) == 1 and eni["Status"] == "available"
    [address] = a.describe_addresses(AllocationIds=[i["allocation"]])["Addresses"]
    assert address["AssociationId"] == i["association"] and address["InstanceId"] == i["instance"]
