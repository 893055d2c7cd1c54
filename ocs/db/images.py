"""Repository functions for images and their launch permissions.

Visibility, as EC2 defines it: an account sees the images it owns, public
images, and images shared with it by an explicit launch permission; never a
deregistered image. Every read here takes the caller's account id and applies
that rule. Errors are EC2's (evidence in the docstrings):

* an ID that is not ``ami-``/``aki-``/``ari-`` + hex -> ``InvalidAMIID.Malformed``;
* an image that does not exist, or that the caller cannot see ->
  ``InvalidAMIID.NotFound`` "The image id '[ami-x]' does not exist";
* an image the caller sees but does not own, for an owner-only action
  (DeregisterImage, Describe/Modify/ResetImageAttribute) -> ``AuthFailure``
  "Not authorized for image:ami-x" (aws cli against a shared AMI,
  cloudcaptainsh/cloudcaptain#66, cloudquery/cloudquery#9406);
* the caller's own deregistered image, or one not in state ``available`` for
  RunInstances -> ``InvalidAMIID.Unavailable`` (EC2 error-code list: "has been
  deregistered and is no longer available, or is not in a state from which you
  can launch an instance or modify attributes").
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Final

from sqlalchemy import ColumnElement, delete, exists, false, func, or_, select
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db.models.base import utcnow
from ocs.db.models.images import Image, ImageLaunchPermission

LOG = logging.getLogger(__name__)

DEREGISTERED: Final = "deregistered"
AVAILABLE: Final = "available"
KIND_OF_TYPE: Final = {"machine": "image", "kernel": "kernel", "ramdisk": "ramdisk"}
IMAGE_KINDS: Final = frozenset(KIND_OF_TYPE.values())

_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
MAX_DESCRIPTION = 255


class ImageAuthFailure(errors.OcsError):
    """An image the caller can see but does not own (EC2 answers 400 AuthFailure)."""

    code = "AuthFailure"
    status = 400
    message = "Not authorized for image:{id}"


# --- errors ------------------------------------------------------------------


def not_found(image_ids: Sequence[str] | str) -> errors.NotFound:
    """``InvalidAMIID.NotFound`` worded as EC2 words it (one or several IDs)."""
    wanted = [image_ids] if isinstance(image_ids, str) else list(image_ids)
    if len(wanted) == 1:
        text = f"The image id '[{wanted[0]}]' does not exist"
    else:
        text = f"The image ids '[{', '.join(wanted)}]' do not exist"
    return errors.NotFound(text, code="InvalidAMIID.NotFound", id=wanted[0])


def unavailable(image_id: str) -> errors.OcsError:
    return errors.IncorrectState(
        f"The image id '[{image_id}]' is no longer available", code="InvalidAMIID.Unavailable"
    )


def validate_image_id(value: str, kinds: Collection[str] = IMAGE_KINDS) -> str:
    """``value`` if it is an image ID of one of ``kinds``, else InvalidAMIID.Malformed."""
    if not isinstance(value, str) or ids.kind_of(value) not in kinds:
        raise ids.malformed(next(iter(kinds)) if len(kinds) == 1 else "image", value)
    return value


def validate_name(name: str) -> str:
    """An AMI name as EC2 accepts it, else ``InvalidAMIName.Malformed``.

    Accepted: what the API reference allows (3-128 letters, digits and
    ``()[] ./-'@_``). The message is EC2's own, which lists fewer characters
    (hashicorp/packer#2774, #4761).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise errors.InvalidParameterValue(
            "AMI names must be between 3 and 128 characters long, and may contain letters, "
            "numbers, '(', ')', '.', '-', '/' and '_'",
            code="InvalidAMIName.Malformed",
        )
    return name


def validate_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise errors.InvalidParameterValue(
            value=description[:32] + "...",
            name="description",
            reason=f"Length exceeds maximum of {MAX_DESCRIPTION}.",
        )
    return description


def validate_account_id(value: str, item_type: str = "userId") -> str:
    """A 12-digit account ID for a launch permission, else InvalidAMIAttributeItemValue."""
    if not isinstance(value, str) or not _ACCOUNT_ID.match(value):
        raise errors.InvalidParameterValue(
            f'Invalid attribute item value "{value}" for {item_type} item type.',
            code="InvalidAMIAttributeItemValue",
        )
    return value


# --- visibility --------------------------------------------------------------


def _shared_with(account_id: str) -> ColumnElement[bool]:
    return exists().where(
        ImageLaunchPermission.image_id == Image.id, ImageLaunchPermission.account_id == account_id
    )


def visible_clause(account_id: str) -> ColumnElement[bool]:
    """Images ``account_id`` may see and launch (deregistered ones excluded)."""
    return (Image.state != DEREGISTERED) & or_(
        Image.account_id == account_id, Image.is_public.is_(True), _shared_with(account_id)
    )


def can_see(s: Session, account_id: str, image: Image) -> bool:
    """Whether ``account_id`` sees ``image`` (whatever its state)."""
    if image.account_id == account_id or image.is_public:
        return True
    return s.get(ImageLaunchPermission, (image.id, account_id)) is not None


def is_visible(s: Session, account_id: str, image_id: str) -> bool:
    """The CreateTags/DeleteTags check: a live image the account can see."""
    image = s.get(Image, image_id)
    return image is not None and image.state != DEREGISTERED and can_see(s, account_id, image)


def query_images(
    s: Session,
    account_id: str,
    *,
    image_ids: Collection[str] | None = None,
    owners: Collection[str] | None = None,
    executable_by: Collection[str] | None = None,
) -> list[Image]:
    """The live images ``account_id`` sees, narrowed as DescribeImages narrows them.

    ``owners`` are account IDs; ``executable_by`` holds account IDs (explicit
    launch permission for that account) and ``"all"`` (public images). Either,
    when given (even empty), must match; the two are ANDed.
    """
    q = select(Image).where(visible_clause(account_id)).order_by(Image.id)
    if image_ids is not None:
        q = q.where(Image.id.in_(list(image_ids)))
    if owners is not None:
        q = q.where(Image.account_id.in_(list(owners)) if owners else false())
    if executable_by is not None:
        clauses: list[ColumnElement[bool]] = []
        if "all" in executable_by:
            clauses.append(Image.is_public.is_(True))
        users = [u for u in executable_by if u != "all"]
        if users:
            clauses.append(
                exists().where(
                    ImageLaunchPermission.image_id == Image.id, ImageLaunchPermission.account_id.in_(users)
                )
            )
        q = q.where(or_(*clauses) if clauses else false())
    return list(s.scalars(q))


def existing_ids(s: Session, image_ids: Iterable[str]) -> set[str]:
    """Which of ``image_ids`` were ever registered (by anyone, in any state)."""
    wanted = list(dict.fromkeys(image_ids))
    return set(s.scalars(select(Image.id).where(Image.id.in_(wanted)))) if wanted else set()


# --- lookups for actions on one image ------------------------------------------


def get_owned_image(s: Session, account_id: str, image_id: str) -> Image:
    """The caller's own live image, for owner-only actions; else EC2's error (module doc)."""
    validate_image_id(image_id)
    image = s.get(Image, image_id)
    if image is None:
        raise not_found(image_id)
    if image.account_id != account_id:
        if image.state == DEREGISTERED or not can_see(s, account_id, image):
            raise not_found(image_id)
        raise ImageAuthFailure(id=image_id)
    if image.state == DEREGISTERED:
        raise unavailable(image_id)
    return image


def get_launchable_image(s: Session, account_id: str, image_id: str) -> Image:
    """The machine image RunInstances may launch for ``account_id``, else EC2's error.

    Not ``ami-``: Malformed. Unknown, or another account's deregistered image:
    NotFound. Existing but not shared with the caller: ``AuthFailure`` "Not
    authorized for images: [ami-x]" (what EC2 answers RunInstances, e.g.
    ansible/lightbulb#331, hashicorp/otto#68). Deregistered or not
    ``available``: ``InvalidAMIID.Unavailable``.
    """
    validate_image_id(image_id, ("image",))
    image = s.get(Image, image_id)
    if image is None or (image.state == DEREGISTERED and image.account_id != account_id):
        raise not_found(image_id)
    if not can_see(s, account_id, image):
        raise ImageAuthFailure(f"Not authorized for images: [{image_id}]")
    if image.state != AVAILABLE or image.image_type != "machine":
        raise unavailable(image_id)
    return image


def get_boot_image(s: Session, account_id: str, image_id: str, image_type: str) -> Image:
    """The kernel (or ramdisk) image ``image_id`` for a machine image or a launch.

    It must be a live ``aki-`` (``ari-``) image the account sees: another kind of
    ID is InvalidAMIID.Malformed, an unknown or invisible one NotFound, one that
    is not ``available`` Unavailable.
    """
    kind = KIND_OF_TYPE[image_type]
    validate_image_id(image_id, (kind,))
    image = s.get(Image, image_id)
    if image is None or image.state == DEREGISTERED or not can_see(s, account_id, image):
        raise not_found(image_id)
    if image.image_type != image_type:
        raise errors.InvalidParameterValue(
            value=image_id, name=f"{kind}Id", reason=f"The image is not a {image_type} image."
        )
    if image.state != AVAILABLE:
        raise unavailable(image_id)
    return image


def find_by_location(s: Session, account_id: str, owner_id: str, name: str) -> Image | None:
    """The live image ``<owner_id>/<name>`` (its ImageLocation) if ``account_id`` sees it."""
    return s.scalar(
        select(Image).where(visible_clause(account_id), Image.account_id == owner_id, Image.name == name)
    )


def find_by_name(s: Session, account_id: str, name: str, *, live_only: bool = True) -> Image | None:
    """The account's image named ``name`` (a live one unless ``live_only`` is False)."""
    q = select(Image).where(Image.account_id == account_id, Image.name == name)
    if live_only:
        q = q.where(Image.state != DEREGISTERED)
    return s.scalars(q.order_by(Image.created_at)).first()


# --- changes -----------------------------------------------------------------


def _fresh_id(s: Session, kind: str) -> str:
    for _ in range(8):
        candidate = ids.new_id(kind)
        if s.get(Image, candidate) is None:
            return candidate
    raise errors.InternalError(f"No free {kind} id found after 8 attempts.")


def create_image(
    s: Session, account_id: str, name: str, *, image_type: str = "machine", **fields: object
) -> Image:
    """Register a new image of ``account_id`` (``fields`` are :class:`Image` columns).

    The name must be valid and unused among the account's live images
    (``InvalidAMIName.Duplicate`` "AMI name x is already in use by AMI ami-y",
    as EC2 words it, e.g. hashicorp/packer#880).
    """
    validate_name(name)
    validate_description(fields.get("description"))  # type: ignore[arg-type]
    taken = find_by_name(s, account_id, name)
    if taken is not None:
        raise errors.Duplicate(
            f"AMI name {name} is already in use by AMI {taken.id}", code="InvalidAMIName.Duplicate"
        )
    fields.setdefault("created_at", utcnow())
    image = Image(
        id=_fresh_id(s, KIND_OF_TYPE[image_type]),
        account_id=account_id,
        name=name,
        image_type=image_type,
        **fields,
    )
    s.add(image)
    s.flush()
    LOG.info("Registered %s image %s (%s) of account %s", image_type, image.id, name, account_id)
    return image


def deregister(s: Session, image: Image, when: dt.datetime | None = None) -> None:
    """Mark ``image`` deregistered; its launch permissions go, its bytes stay in the store."""
    image.state = DEREGISTERED
    image.deregistered_at = when or utcnow()
    image.is_public = False
    s.execute(delete(ImageLaunchPermission).where(ImageLaunchPermission.image_id == image.id))
    s.flush()
    LOG.info("Deregistered image %s of account %s", image.id, image.account_id)


def launch_permissions(s: Session, image_ids: Iterable[str]) -> dict[str, list[str]]:
    """``{image_id: [account_id, ...]}`` of explicit launch permissions, sorted."""
    out: dict[str, list[str]] = defaultdict(list)
    wanted = list(dict.fromkeys(image_ids))
    if wanted:
        rows = s.execute(
            select(ImageLaunchPermission.image_id, ImageLaunchPermission.account_id)
            .where(ImageLaunchPermission.image_id.in_(wanted))
            .order_by(ImageLaunchPermission.image_id, ImageLaunchPermission.account_id)
        )
        for image_id, account in rows:
            out[image_id].append(account)
    return {i: out.get(i, []) for i in wanted}


def change_launch_permissions(
    s: Session,
    image: Image,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    public: bool | None = None,
) -> None:
    """Grant (``add``) and revoke (``remove``) launch permissions; ``public`` sets group all.

    Granting twice or revoking a permission that does not exist is not an error.
    """
    for account in dict.fromkeys(add):
        if s.get(ImageLaunchPermission, (image.id, account)) is None:
            s.add(ImageLaunchPermission(image_id=image.id, account_id=account))
    gone = list(dict.fromkeys(remove))
    if gone:
        s.execute(
            delete(ImageLaunchPermission).where(
                ImageLaunchPermission.image_id == image.id, ImageLaunchPermission.account_id.in_(gone)
            )
        )
    if public is not None:
        image.is_public = public
    s.flush()


def reset_launch_permissions(s: Session, image: Image) -> None:
    """Back to private: no public group, no explicit permissions."""
    s.execute(delete(ImageLaunchPermission).where(ImageLaunchPermission.image_id == image.id))
    image.is_public = False
    s.flush()


def mark_launched(s: Session, image_id: str, when: dt.datetime | None = None) -> None:
    """Record that an instance was launched from ``image_id`` (lastLaunchedTime)."""
    image = s.get(Image, image_id)
    if image is not None:
        image.last_launched_at = when or utcnow()


# --- the operator's view -------------------------------------------------------


def list_images(
    s: Session, account_id: str | None = None, *, include_deregistered: bool = False
) -> list[Image]:
    """Every image (of one account, if given), oldest first."""
    q = select(Image).order_by(Image.created_at, Image.id)
    if account_id is not None:
        q = q.where(Image.account_id == account_id)
    if not include_deregistered:
        q = q.where(Image.state != DEREGISTERED)
    return list(s.scalars(q))


def get_image(s: Session, image_id: str) -> Image:
    """Any image by ID, whoever owns it (operator commands); NotFound if unknown."""
    validate_image_id(image_id)
    image = s.get(Image, image_id)
    if image is None:
        raise not_found(image_id)
    return image


def find_image(s: Session, image_id: str) -> Image | None:
    """Any image by ID, deregistered or not (what an instance was launched from); None if unknown."""
    return s.get(Image, image_id)


def live_references(s: Session, location: str) -> int:
    """How many live images use the stored bytes ``location``."""
    return int(
        s.scalar(
            select(func.count())
            .select_from(Image)
            .where(Image.location == location, Image.state != DEREGISTERED)
        )
        or 0
    )


def any_kernel_booted_image(s: Session) -> bool:
    """Whether an available machine image that boots from a kernel image exists."""
    found = s.scalar(
        select(Image.id)
        .where(Image.image_type == "machine", Image.kernel_id.is_not(None), Image.state == "available")
        .limit(1)
    )
    return found is not None
