"""``ocs-manage image ...``: import image files, list and delete images.

Imported images belong to an account (``--account``, ``admin`` by default) and
are private to it unless ``--public``; their bytes go into the image store
(``[images] store_dir``, by default ``<state_dir>/images``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from oslo_config import cfg

from ocs.conf.images import store_path
from ocs.db import accounts as db_accounts
from ocs.db import images as repo
from ocs.db.models.images import Image
from ocs.images import importer
from ocs.images.store import ImageStore
from ocs.manage.common import print_json, print_table, session

ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")


def image_row(image: Image) -> dict[str, Any]:
    return {
        "image_id": image.id,
        "name": image.name,
        "type": image.image_type,
        "state": image.state,
        "account_id": image.account_id,
        "public": image.is_public,
        "architecture": image.architecture,
        "kernel_id": image.kernel_id,
        "ramdisk_id": image.ramdisk_id,
        "disk_format": image.disk_format,
        "size": image.size,
        "checksum": image.checksum,
        "location": image.location,
        "description": image.description,
        "created_at": image.created_at,
    }


def image_import(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    store = ImageStore(store_path(conf))
    with session(conf) as s:
        account = db_accounts.get_account(s, args.account)
        request = importer.ImportRequest(
            path=Path(args.file).expanduser(),
            account_id=account.id,
            name=args.name,
            image_type=args.type,
            architecture=args.arch,
            kernel_id=args.kernel,
            ramdisk_id=args.ramdisk,
            public=args.public,
            description=args.description,
        )
        out = image_row(importer.import_image(s, store, request))
    if args.json:
        print_json(out)
    else:
        print(out["image_id"])
    return 0


def image_list(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    with session(conf) as s:
        account_id = db_accounts.get_account(s, args.account).id if args.account else None
        rows = [image_row(i) for i in repo.list_images(s, account_id, include_deregistered=args.all)]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["IMAGE ID", "NAME", "TYPE", "STATE", "ACCOUNT", "PUBLIC", "ARCH", "FORMAT", "SIZE"],
            [
                [
                    r["image_id"],
                    r["name"],
                    r["type"],
                    r["state"],
                    r["account_id"],
                    r["public"],
                    r["architecture"],
                    r["disk_format"],
                    r["size"],
                ]
                for r in rows
            ],
        )
    return 0


def image_delete(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    store = ImageStore(store_path(conf))
    with session(conf) as s:
        image, unused = importer.delete_image(s, args.image_id)
        image_id = image.id
    removed = importer.remove_unused(store, unused)
    print(f"image {image_id} deregistered" + ("; its bytes were removed from the store" if removed else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    img = sub.add_parser("image", help="machine, kernel and ramdisk images")
    imgsub = img.add_subparsers(dest="image_command", required=True, metavar="COMMAND")
    p = imgsub.add_parser("import", help="put an image file into the image store and register it")
    p.add_argument("file", help="raw or qcow2 disk (or kernel / ramdisk) file")
    p.add_argument("--name", required=True, help="image name (3-128 characters, unique per account)")
    p.add_argument(
        "--type",
        choices=repo.KIND_OF_TYPE,
        default="machine",
        help="machine (ami-), kernel (aki-) or ramdisk (ari-); default machine",
    )
    p.add_argument("--kernel", metavar="AKI_ID", help="kernel image a machine image boots")
    p.add_argument("--ramdisk", metavar="ARI_ID", help="ramdisk image a machine image boots")
    p.add_argument("--arch", choices=ARCHITECTURES, default="x86_64", help="architecture; default x86_64")
    p.add_argument("--account", default="admin", help="owning account (name or id); default admin")
    p.add_argument("--public", action="store_true", help="let every account launch it")
    p.add_argument("--description", help="description shown by DescribeImages")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=image_import)
    p = imgsub.add_parser("list", help="list images of every account")
    p.add_argument("--account", help="only this account's images (name or id)")
    p.add_argument("--all", action="store_true", help="include deregistered images")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=image_list)
    p = imgsub.add_parser(
        "delete", help="deregister an image and remove its bytes if no other image uses them"
    )
    p.add_argument("image_id")
    p.set_defaults(func=image_delete)
