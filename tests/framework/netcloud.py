"""A small network "cloud" in a database, for the network service's tests.

:class:`NetCloud` writes what the API would have written (an account, VPCs,
subnets, security groups with rules, instances placed on hosts with their
address, MAC and groups) through the repository functions where they exist, so
that the service reads it exactly as in production.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from ocs import ids
from ocs.db import accounts, compute, routing, secgroups, vpcs
from ocs.db.engine import transaction
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Instance, Reservation
from ocs.db.models.interfaces import ElasticAddress, InterfaceAddress, NetworkInterface
from ocs.db.models.routing import NatGateway
from ocs.network.sg_rules import RuleSpec


@dataclass(frozen=True)
class Port:
    instance_id: str
    interface_id: str
    mac: str
    ip: str
    subnet_id: str
    vpc_id: str


class NetCloud:
    _accounts = itertools.count(1)

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions
        with transaction(sessions) as s:
            self.account_id = accounts.create_account(s, f"net{next(self._accounts)}").id
        self._macs = itertools.count(1)

    def vpc(self, cidr: str) -> str:
        with transaction(self.sessions) as s:
            return vpcs.create_vpc(s, self.account_id, cidr).id

    def subnet(self, vpc_id: str, cidr: str, zone: str = "zone-a") -> str:
        with transaction(self.sessions) as s:
            vpc = vpcs.get_vpc(s, self.account_id, vpc_id)
            return vpcs.create_subnet(s, self.account_id, vpc, cidr, zone).id

    def group(self, vpc_id: str, name: str) -> str:
        with transaction(self.sessions) as s:
            return secgroups.create_group(s, self.account_id, vpc_id, name, name).id

    def allow(self, group_id: str, protocol: str, port: int | None, *, cidr: str | None = None,
              source_group: str | None = None) -> None:  # fmt: skip
        with transaction(self.sessions) as s:
            group = secgroups.get_group(s, self.account_id, group_id)
            secgroups.add_rules(s, group, [self._spec(protocol, port, cidr, source_group)])

    def revoke(self, group_id: str, protocol: str, port: int | None, *, cidr: str | None = None,
               source_group: str | None = None) -> None:  # fmt: skip
        with transaction(self.sessions) as s:
            group = secgroups.get_group(s, self.account_id, group_id)
            found, _ = secgroups.match_rules(s, group, [self._spec(protocol, port, cidr, source_group)])
            secgroups.delete_rules(s, found)

    @staticmethod
    def _spec(protocol: str, port: int | None, cidr: str | None, source_group: str | None) -> RuleSpec:
        return RuleSpec(
            is_egress=False, protocol=protocol, from_port=port, to_port=port, cidr_ipv4=cidr,
            group_id=source_group,
        )  # fmt: skip

    def instance(self, host: str, subnet_id: str, ip: str, groups: list[str], *,
                 user_data: str = "", state: str = "running") -> Port:  # fmt: skip
        with transaction(self.sessions) as s:
            subnet = vpcs.get_subnet(s, self.account_id, subnet_id)
            reservation = Reservation(id=ids.new_id("reservation"), account_id=self.account_id)
            s.add(reservation)
            s.flush()
            n = next(self._macs)
            inst = Instance(
                id=ids.new_id("instance"),
                account_id=self.account_id,
                reservation_id=reservation.id,
                image_id="ami-0123456789abcdef0",
                instance_type="t3.micro",
                vcpus=1,
                memory_mib=512,
                disk_gib=1,
                state=state,
                host=host,
                availability_zone=subnet.availability_zone,
                vpc_id=subnet.vpc_id,
                subnet_id=subnet_id,
                private_ip_address=ip,
                mac_address=f"02:0c:5e:00:{n // 256:02x}:{n % 256:02x}",
                network_interface_id=ids.new_id("network_interface"),
                security_group_ids=groups,
                user_data=base64.b64encode(user_data.encode()).decode() if user_data else None,
            )
            s.add(inst)
            s.flush()
            s.add(compute.primary_interface(inst, ip, utcnow()))  # as RunInstances does
            s.flush()
            s.add(InterfaceAddress(subnet_id=subnet_id, address=ip, network_interface_id=inst.network_interface_id,
                                   is_primary=True))  # fmt: skip
            s.flush()
            return Port(inst.id, inst.network_interface_id or "", inst.mac_address or "", ip, subnet_id,
                        subnet.vpc_id)  # fmt: skip

    def set_state(self, instance_id: str, state: str) -> None:
        with transaction(self.sessions) as s:
            inst = s.get(Instance, instance_id)
            assert inst is not None
            inst.state = state

    def internet_gateway(self, vpc_id: str, destination: str = "0.0.0.0/0") -> str:
        """An internet gateway attached to the VPC, and a route to it in the VPC's main table."""
        with transaction(self.sessions) as s:
            igw = routing.create_internet_gateway(s, self.account_id)
            routing.attach_internet_gateway(s, self.account_id, igw.id, vpc_id)
            table = routing.main_route_table(s, vpc_id)
            assert table is not None
            target = routing.resolve_target(s, self.account_id, table, gateway_id=igw.id)
            routing.create_route(s, self.account_id, table, destination, target)
            return igw.id

    def map_public(self, port: Port, public_ip: str) -> str:
        """An elastic IP of this account mapped to the port's primary address (its allocation ID)."""
        with transaction(self.sessions) as s:
            row = ElasticAddress(
                id=ids.new_id("allocation"), account_id=self.account_id, public_ip=public_ip, domain="vpc",
                association_id=ids.new_id("association"), network_interface_id=port.interface_id,
                private_ip_address=port.ip,
            )  # fmt: skip
            s.add(row)
            return row.id

    def delete_internet_routes(self, vpc_id: str) -> None:
        """Every route of the VPC's main table to an internet gateway goes."""
        with transaction(self.sessions) as s:
            table = routing.main_route_table(s, vpc_id)
            assert table is not None
            for route in routing.routes_of(s, [table.id]).get(table.id, []):
                if (route.gateway_id or "").startswith("igw-"):
                    routing.delete_route(s, self.account_id, table, route.destination_cidr_block)

    def unmap_public(self, allocation_id: str) -> None:
        with transaction(self.sessions) as s:
            row = s.get(ElasticAddress, allocation_id)
            assert row is not None
            row.association_id = row.network_interface_id = row.private_ip_address = None

    def route_table(self, vpc_id: str, subnet_id: str) -> str:
        """A route table of the VPC associated with the subnet (its table from now on)."""
        with transaction(self.sessions) as s:
            vpc = vpcs.get_vpc(s, self.account_id, vpc_id)
            table = routing.create_route_table(s, self.account_id, vpc)
            routing.associate_subnet(s, self.account_id, table.id, subnet_id)
            return table.id

    def route(self, table_id: str, destination: str, *, nat_gateway_id: str | None = None,
              interface_id: str | None = None) -> None:  # fmt: skip
        """CreateRoute to a NAT gateway or a network interface, as the API checks it."""
        with transaction(self.sessions) as s:
            table = routing.get_route_table(s, self.account_id, table_id)
            target = routing.resolve_target(
                s, self.account_id, table, nat_gateway_id=nat_gateway_id, network_interface_id=interface_id
            )
            routing.create_route(s, self.account_id, table, destination, target)

    def nat_gateway(self, subnet_id: str, host: str, public_ip: str) -> str:
        """A public NAT gateway in the subnet with a new elastic IP, placed on ``host``."""
        with transaction(self.sessions) as s:
            row = ElasticAddress(id=ids.new_id("allocation"), account_id=self.account_id, public_ip=public_ip,
                                 domain="vpc")  # fmt: skip
            s.add(row)
            s.flush()
            nat = routing.create_nat_gateway(
                s, self.account_id, subnet_id, connectivity_type="public", allocation_id=row.id, hosts=[host]
            )
            assert nat.state == "pending", nat.failure_message
            return nat.id

    def nat_state(self, nat_id: str) -> tuple[str, str]:
        """(state, private address of its interface, "" once gone)."""
        with transaction(self.sessions) as s:
            nat = s.get(NatGateway, nat_id)
            assert nat is not None
            eni = s.get(NetworkInterface, nat.network_interface_id)
            return nat.state, eni.private_ip_address if eni is not None else ""

    def delete_nat_gateway(self, nat_id: str) -> None:
        with transaction(self.sessions) as s:
            routing.delete_nat_gateway(s, self.account_id, nat_id)

    def source_dest_check(self, port: Port, value: bool) -> None:
        with transaction(self.sessions) as s:
            row = s.get(NetworkInterface, port.interface_id)
            assert row is not None
            row.source_dest_check = value

    def interface(self, port: Port) -> NetworkInterface:
        with transaction(self.sessions) as s:
            row = s.get(NetworkInterface, port.interface_id)
            assert row is not None
            s.expunge(row)
            return row
