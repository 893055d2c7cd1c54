"""The private addresses of every subnet: who holds which, and safe allocation of the free ones.

Every private address any network interface holds (its primary and its
secondaries, of instances' interfaces and of the others alike) is one row of
``interface_addresses``, keyed by (subnet, address). That key is what makes two
interfaces never hold one address, even when several API workers allocate at
once: an allocation inserts its rows inside a savepoint and, when the key
collides with what another transaction committed meanwhile, reads the subnet
again and takes the next free address (:func:`insert_with_address`).

Before reading what is used, an allocation locks the subnet's row (a no-op on
SQLite, whose writers are serial): without it, concurrent allocations in one
subnet collide on the key, and MariaDB answers collisions between uncommitted
inserts with deadlocks that abort the whole transaction. The read that follows
is a locking read, which sees what other transactions committed after this one
began (MariaDB's REPEATABLE READ).

Which addresses of a block may be handed out at all is the pure core's
(:mod:`ocs.network.ipam`): EC2's five reserved addresses never are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors
from ocs.db import vpcs
from ocs.db.models.interfaces import InterfaceAddress
from ocs.db.models.network import Subnet
from ocs.network import ipam

IP_ATTEMPTS: Final = 16


class InsufficientFreeAddresses(errors.OcsError):
    code = "InsufficientFreeAddressesInSubnet"
    status = 400
    message = (
        "There are not enough free addresses in subnet '{subnet_id}' to satisfy the requested "
        "number of instances."
    )


def address_in_use(address: str) -> errors.OcsError:
    return errors.InUse(f"Address {address} is in use.", code="InvalidIPAddress.InUse")


# --- reading ---------------------------------------------------------------------------------


def used_addresses(s: Session, subnet_id: str, *, fresh: bool = False) -> set[str]:
    """The addresses interfaces hold in the subnet; ``fresh``: a locking read."""
    q = select(InterfaceAddress.address).where(InterfaceAddress.subnet_id == subnet_id)
    if fresh:
        q = q.with_for_update(read=True)
    return set(s.scalars(q))


def subnet_usage(s: Session, subnet_ids: Sequence[str]) -> dict[str, int]:
    """Addresses held per subnet (for AvailableIpAddressCount)."""
    if not subnet_ids:
        return {}
    rows = s.execute(
        select(InterfaceAddress.subnet_id, func.count())
        .where(InterfaceAddress.subnet_id.in_(list(subnet_ids)))
        .group_by(InterfaceAddress.subnet_id)
    )
    return {subnet_id: int(n) for subnet_id, n in rows}


def free_address_count(s: Session, subnet_id: str, cidr_block: str) -> int:
    low, high = ipam.subnet_range(cidr_block)
    used = s.scalar(select(func.count()).where(InterfaceAddress.subnet_id == subnet_id))
    return max(0, high - low + 1 - int(used or 0))


def check_requested_address(
    s: Session, subnet_id: str, cidr_block: str, address: str, *, name: str = "PrivateIpAddress"
) -> str:
    """``address`` if it is a free, usable address of the subnet, else EC2's error."""
    why = ipam.check_in_subnet(cidr_block, address)
    if why == "invalid":
        raise errors.InvalidParameterValue(value=address, name=name, reason="It is not a valid IPv4 address.")
    if why == "outside":
        raise errors.InvalidParameterValue(
            f"Address {address} does not fall within the subnet's address range"
        )
    if why == "reserved":
        raise errors.InvalidParameterValue(f"Address {address} is reserved by the subnet {subnet_id}")
    if s.get(InterfaceAddress, (subnet_id, address)) is not None:
        raise address_in_use(address)
    return address


# --- allocating ------------------------------------------------------------------------------


@dataclass
class Pool:
    """A subnet locked for allocation by this transaction, and what it knows is used there."""

    subnet_id: str
    cidr_block: str
    used: set[str] = field(default_factory=set)
    cursor: int = 0
    collisions: int = 0

    def next_free(self) -> str:
        found = ipam.next_free(ipam.subnet_range(self.cidr_block), self.used, self.cursor)
        if found is None:
            raise InsufficientFreeAddresses(subnet_id=self.subnet_id)
        address, self.cursor = found
        return address


def lock_subnet(s: Session, subnet_id: str) -> None:
    """Serialize address allocation in one subnet (see the module docstring)."""
    s.execute(select(Subnet.id).where(Subnet.id == subnet_id).with_for_update())


def open_pool(s: Session, subnet_id: str, cidr_block: str) -> Pool:
    """Lock the subnet and read what is used there, for the allocations of this transaction."""
    lock_subnet(s, subnet_id)
    return Pool(subnet_id, cidr_block, used_addresses(s, subnet_id, fresh=True))


def insert_with_address(
    s: Session, pool: Pool, make: Callable[[str], Sequence[object]], requested: str | None = None
) -> str:
    """Insert the rows ``make(address)`` returns for the requested or the lowest free address.

    ``make`` is called again with another address (and must build new rows, with
    new IDs) when another transaction took the address meanwhile; a requested
    address taken meanwhile is ``InvalidIPAddress.InUse``.
    """
    for _ in range(IP_ATTEMPTS):
        address = requested or pool.next_free()
        try:
            with s.begin_nested():
                for row in make(address):  # in order: rows referring to others come after them
                    s.add(row)
                    s.flush()
        except IntegrityError:
            fresh = used_addresses(s, pool.subnet_id, fresh=True)
            if address not in fresh:
                # Not the address (an ID collision, at worst): try again with new rows,
                # but never hide another constraint's failure behind "no free address".
                pool.collisions += 1
                if pool.collisions > 2:
                    raise
                continue
            if requested:
                raise address_in_use(address) from None
            pool.used |= fresh | {address}
            continue
        pool.used.add(address)
        return address
    raise InsufficientFreeAddresses(subnet_id=pool.subnet_id)


def address_row(pool: Pool, interface_id: str, address: str, *, primary: bool) -> InterfaceAddress:
    return InterfaceAddress(
        subnet_id=pool.subnet_id, address=address, network_interface_id=interface_id, is_primary=primary
    )


def add_secondaries(
    s: Session, pool: Pool, interface_id: str, requested: Sequence[str] = (), count: int = 0
) -> list[str]:
    """Give an interface the ``requested`` secondary addresses and ``count`` more of the free ones."""
    taken = []
    for address in requested:
        make = lambda a: [address_row(pool, interface_id, a, primary=False)]  # noqa: E731
        taken.append(insert_with_address(s, pool, make, requested=address))
    for _ in range(count):
        make = lambda a: [address_row(pool, interface_id, a, primary=False)]  # noqa: E731
        taken.append(insert_with_address(s, pool, make))
    return taken


vpcs.SUBNET_USAGE.append(subnet_usage)
