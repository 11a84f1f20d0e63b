"""`cme audit verify`: the audit chain, and the chain against the checkpoints kept outside it (daily and
every few minutes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.audit import service as audit
from app.audit.checkpoints import CheckpointSignatureInvalid, receipt_head, signed_head
from app.audit.interval import FILE_PREFIX as INTERVAL_FILE_PREFIX
from app.core.config import get_settings
from app.core.db import make_engine, make_session_factory
from app.core.errors import ProblemError
from app.security.service_key import load_service_signer


class ServiceKeyMissing(ProblemError):
    status, slug, title = 400, "service-key-missing", "No service key to verify checkpoints with"


def _checkpoint_files(args: argparse.Namespace) -> list[Path]:
    files = [Path(f) for f in args.checkpoint]
    if args.checkpoint_dir is not None:
        directory = Path(args.checkpoint_dir)
        files += sorted(directory.glob("audit-checkpoint-*.jws"))
        files += sorted(directory.glob(f"{INTERVAL_FILE_PREFIX}*.jws"))
    return files


def _verify(args: argparse.Namespace) -> int:
    """Exit 0 when the chain and every checkpoint agree, 1 otherwise; one JSON report on stdout."""
    settings = get_settings()
    if args.jwks is not None:
        jwks: dict[str, Any] = json.loads(Path(args.jwks).read_text())
    elif settings.service_key_file.exists():
        jwks = dict(load_service_signer(settings.service_key_file).jwks())
    else:
        raise ServiceKeyMissing(
            f"{settings.service_key_file} does not exist; pass the published keys with --jwks."
        )
    base = signed_head(Path(args.from_checkpoint).read_text(), jwks) if args.from_checkpoint else None
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            # The chain once (from the genesis, or from a trusted checkpoint on), then each checkpoint's
            # event looked up: a checkpoint that still matches pins everything up to it.
            chain = audit.verify_chain(session, after=base)
            report: dict[str, Any] = {
                "chain": {
                    "ok": chain.ok,
                    "from_seq": 1 if base is None else base[0] + 1,
                    "checked": chain.checked,
                    "first_bad_seq": chain.first_bad_seq,
                },
                "checkpoints": [],
            }
            ok = chain.ok
            last_seq = audit.head(session)[0]
            sources = [(p, signed_head) for p in _checkpoint_files(args)]
            sources += [(Path(p), receipt_head) for p in args.receipt]
            for path, read_head in sources:
                entry: dict[str, Any] = {"file": str(path)}
                try:
                    seq, head = read_head(path.read_text(), jwks)
                    entry |= audit.check_head(session, seq=seq, hash=head, last_seq=last_seq)
                except CheckpointSignatureInvalid as exc:
                    entry |= {"ok": False, "error": exc.slug}
                ok = ok and entry["ok"]
                report["checkpoints"].append(entry)
    finally:
        engine.dispose()
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


def add_commands(subparsers: Any) -> None:
    audit_parser = subparsers.add_parser("audit", help="Check the audit log.")
    commands = audit_parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = commands.add_parser(
        "verify",
        help="Recompute the audit chain and check it against signed checkpoints (exit 1 if anything differs).",
    )
    verify.add_argument("--checkpoint", action="append", default=[], help="A checkpoint file (repeatable).")
    verify.add_argument(
        "--from-checkpoint",
        help="Trust the chain up to this (signature-checked) checkpoint, verified before, and recompute "
        "only the events after it.",
    )
    verify.add_argument(
        "--checkpoint-dir",
        help="Every audit-checkpoint-*.jws (daily) and audit-interval-checkpoint-*.jws file in this directory.",
    )
    verify.add_argument(
        "--receipt",
        action="append",
        default=[],
        help="A signed submission receipt (its receipt_jws, saved; repeatable): the audit head it carries.",
    )
    verify.add_argument(
        "--jwks",
        help="The service's published keys (/.well-known/jwks.json, saved); default: the key of this "
        "deployment's service key file.",
    )
    verify.set_defaults(handler=_verify)
