"""`cme partners ...` and `cme keys ...`: the partner registry and partners' public keys."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import make_engine, make_session_factory
from app.core.jose_adapter import KeyAlg
from app.core.keyfiles import generate_key_files
from app.partners import service
from app.partners.exceptions import InvalidPartner
from app.partners.models import PartnerKind, PartnerStatus
from app.partners.schemas import PartnerCreate, PartnerKeyRead, PartnerRead

T = TypeVar("T")


def in_transaction(work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction on the configured database (CME_DATABASE_URL).

    Callers print the result only after this returns, so nothing is reported that was not committed.
    """
    engine = make_engine(get_settings().database_url)
    try:
        with make_session_factory(engine).begin() as session:
            return work(session)
    finally:
        engine.dispose()


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _partner_json(partner: Any) -> dict[str, Any]:
    return PartnerRead.model_validate(partner).model_dump(mode="json")


def _key_json(key: Any) -> dict[str, Any]:
    return PartnerKeyRead.model_validate(key).model_dump(mode="json")


def _partners_add(args: argparse.Namespace) -> int:
    try:
        data = PartnerCreate(id=args.id, kind=args.kind, name=args.name, area_id=args.area)
    except ValidationError as exc:
        raise InvalidPartner("; ".join(error["msg"] for error in exc.errors())) from None
    pilot_las = get_settings().pilot_las
    print_json(
        in_transaction(
            lambda s: _partner_json(service.create_partner(s, data, pilot_las=pilot_las, now=_now()))
        )
    )
    return 0


def _partners_list(args: argparse.Namespace) -> int:
    print_json(in_transaction(lambda s: [_partner_json(p) for p in service.list_partners(s, args.kind)]))
    return 0


def _partners_set_status(status: PartnerStatus) -> Any:
    def handler(args: argparse.Namespace) -> int:
        print_json(in_transaction(lambda s: _partner_json(service.set_status(s, args.id, status))))
        return 0

    return handler


def _partners_seed(args: argparse.Namespace) -> int:
    partners = service.load_seed_file(Path(args.file).read_text(encoding="utf-8") if args.file else None)
    pilot_las = get_settings().pilot_las
    result = in_transaction(lambda s: service.seed_partners(s, partners, pilot_las=pilot_las, now=_now()))
    print_json({"created": result.created, "already_present": result.already_present})
    return 0


def _keys_add(args: argparse.Namespace) -> int:
    jwk = service.parse_jwk(Path(args.jwk).read_text(encoding="utf-8"))
    print_json(
        in_transaction(
            lambda s: _key_json(
                service.register_key(s, args.partner, jwk, now=_now(), alg=args.alg, kid=args.kid)
            )
        )
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    print_json(in_transaction(lambda s: [_key_json(k) for k in service.list_keys(s, args.partner)]))
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    print_json(in_transaction(lambda s: _key_json(service.revoke_key(s, args.partner, args.kid, now=_now()))))
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    files = generate_key_files(Path(args.out), partner_id=args.partner, alg=args.alg, kid=args.kid)
    output: dict[str, Any] = {
        "kid": files.kid,
        "private_key": str(files.private_pem),
        "public_jwk": str(files.public_jwk),
    }
    if args.register:
        output["registered"] = in_transaction(
            lambda s: _key_json(
                service.register_key(s, args.partner, files.jwk, now=_now(), alg=args.alg, kid=files.kid)
            )
        )
    print_json(output)
    return 0


def add_commands(subparsers: Any) -> None:
    partners = subparsers.add_parser("partners", help="The partner registry.")
    partner_commands = partners.add_subparsers(dest="partners_command", required=True, metavar="ACTION")

    add = partner_commands.add_parser("add", help="Register a partner organisation.")
    add.add_argument(
        "--id", required=True, help="GSS code (LA, health board), ODS code, school number or WG."
    )
    add.add_argument("--kind", required=True, type=PartnerKind, choices=list(PartnerKind))
    add.add_argument("--name", required=True)
    add.add_argument("--area", help="The LA or health board a GP practice or independent school sits in.")
    add.set_defaults(handler=_partners_add)

    listing = partner_commands.add_parser("list", help="List partners.")
    listing.add_argument("--kind", type=PartnerKind, choices=list(PartnerKind))
    listing.set_defaults(handler=_partners_list)

    for action, status in (("suspend", PartnerStatus.suspended), ("activate", PartnerStatus.active)):
        command = partner_commands.add_parser(action, help=f"Set a partner's status to {status}.")
        command.add_argument("id")
        command.set_defaults(handler=_partners_set_status(status))

    seed = partner_commands.add_parser(
        "seed", help="Add the partners of a seed file that are not yet present."
    )
    seed.add_argument("--file", help="Seed file (default: the demo registry shipped with the service).")
    seed.set_defaults(handler=_partners_seed)

    keys = subparsers.add_parser("keys", help="Partners' public signing keys.")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    key_add = key_commands.add_parser("add", help="Register a public JWK for a partner.")
    key_add.add_argument("--partner", required=True)
    key_add.add_argument("--jwk", required=True, help="File holding one public JWK (JSON).")
    key_add.add_argument("--alg", type=KeyAlg, choices=list(KeyAlg), help="Default: from the JWK.")
    key_add.add_argument("--kid", help="Default: the JWK's kid, else its RFC 7638 thumbprint.")
    key_add.set_defaults(handler=_keys_add)

    key_list = key_commands.add_parser("list", help="List a partner's keys.")
    key_list.add_argument("--partner", required=True)
    key_list.set_defaults(handler=_keys_list)

    revoke = key_commands.add_parser("revoke", help="Revoke a key at once.")
    revoke.add_argument("--partner", required=True)
    revoke.add_argument("--kid", required=True)
    revoke.set_defaults(handler=_keys_revoke)

    generate = key_commands.add_parser(
        "generate", help="Make a key pair (private PEM, public JWK) for trials."
    )
    generate.add_argument("--partner", required=True)
    generate.add_argument("--alg", type=KeyAlg, choices=list(KeyAlg), default=KeyAlg.ES256)
    generate.add_argument(
        "--kid", help="Default: the RFC 7638 thumbprint (pass it on as --kid=VALUE: it may start with '-')."
    )
    generate.add_argument("--out", required=True, help="Directory for the files.")
    generate.add_argument("--register", action="store_true", help="Also register the public key.")
    generate.set_defaults(handler=_keys_generate)
