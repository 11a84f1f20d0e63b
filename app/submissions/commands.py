"""`cme demo generate`, `cme validate`, `cme sign`, `cme schemas` and `cme submit`: synthetic submissions for
trials, checking a file offline with the service's own rules, signing it, the published JSON Schemas, and
sending a submission (validated, signed if need be, its receipt verified, its job followed)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from app.audit.checkpoints import signed_claims
from app.core.errors import ProblemError
from app.core.jose_adapter import sign_compact
from app.core.keyfiles import load_private_key
from app.security.commands import bearer_token
from app.security.jws import RECEIPT_TYP, SUBMISSION_TYP
from app.submissions import partner_cli
from app.submissions.schemas import SubmissionKind
from app.synthetic.population import PopulationConfig, generate
from app.synthetic.submissions import write_submission_files

PROGRESS_MIN_BYTES = 1024 * 1024
_CHUNK_BYTES = 256 * 1024
_FINISHED_JOB = frozenset({"succeeded", "failed"})


def _generate(args: argparse.Namespace) -> int:
    # Stages and timings on stderr (100,000 children take a while); the files written on stdout.
    started = time.perf_counter()
    print(f"generating {args.children:,} children (seed {args.seed})...", file=sys.stderr, flush=True)
    population = generate(PopulationConfig(children=args.children, seed=args.seed))
    print(
        f"generated in {time.perf_counter() - started:.1f} s: {len(population.health_records):,} health "
        f"rows, {len(population.education_records):,} education rows; writing to {args.out}",
        file=sys.stderr,
        flush=True,
    )
    paths = write_submission_files(population, Path(args.out))
    for path in paths:
        print(path)
    print(f"{len(paths)} files in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


class ServiceUnreachable(ProblemError):
    status, slug, title = 503, "service-unreachable", "The service did not answer"


class ReceiptNotVerified(ProblemError):
    status, slug, title = 502, "receipt-not-verified", "The receipt does not verify"


class CredentialsMissing(ProblemError):
    status, slug, title = 400, "credentials-missing", "No way to authenticate"


class SubmissionNotAccepted(ProblemError):
    status, slug, title = 400, "submission-not-accepted", "The service did not accept the submission"


class JobWaitTimedOut(ProblemError):
    status, slug, title = 504, "job-wait-timed-out", "The job had not finished"


def _validate(args: argparse.Namespace) -> int:
    loaded = partner_cli.load_input(args, sender=args.sender, allow_jws=True)
    report = partner_cli.check(loaded)
    partner_cli.print_report(report, loaded, sys.stdout, as_json=args.json)
    return 1 if report.bad else 0


def _schemas(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for kind in SubmissionKind:
        path = out / f"{kind.value}.schema.json"
        path.write_text(partner_cli.schema_text(kind), encoding="utf-8")
        print(path)
    return 0


class _Progress:
    """Progress on stderr: redrawn in place on a terminal, a line per tenth otherwise (--progress)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._last_tenth = -1

    def say(self, message: str) -> None:
        if self.enabled:
            print(message, file=sys.stderr, flush=True)

    def bytes_sent(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        tenth = done * 10 // total if total else 10
        text = f"sending {done / 1e6:.1f}/{total / 1e6:.1f} MB ({done * 100 // max(total, 1)}%)"
        if self.tty:
            print(f"\r{text}", end="\n" if done >= total else "", file=sys.stderr, flush=True)
        elif tenth != self._last_tenth:
            print(text, file=sys.stderr, flush=True)
        self._last_tenth = tenth


def _chunks(body: bytes, progress: _Progress) -> Iterator[bytes]:
    for start in range(0, len(body), _CHUNK_BYTES):
        chunk = body[start : start + _CHUNK_BYTES]
        yield chunk
        progress.bytes_sent(start + len(chunk), len(body))


def _token_source(args: argparse.Namespace) -> Callable[[], str] | None:
    """A fresh token per request from the partner's key; or the one --token (then only the POST)."""
    if args.key and args.kid and args.partner:
        key = load_private_key(Path(args.key))
        return lambda: bearer_token(args.partner, key, args.kid)
    return None


def _request(method: str, url: str, *, timeout: float, **kwargs: Any) -> httpx.Response:
    try:
        return httpx.request(method, url, timeout=timeout, **kwargs)
    except httpx.TransportError as exc:  # one line that says what to check, not a traceback
        raise ServiceUnreachable(
            f"{url}: {type(exc).__name__}: {exc}. Is the service running there?"
        ) from exc


def _problem_line(response: httpx.Response, document: Any) -> str:
    if isinstance(document, dict) and "type" in document:
        detail = document.get("detail") or document.get("title")
        named = [
            f"record {e.get('record_index')}: {e.get('field')}: {e.get('code')}"
            if e.get("record_index") is not None
            else f"{e.get('field')}: {e.get('code')}"
            for e in document.get("errors", [])[:5]
        ]
        more = f" ({'; '.join(named)})" if named else ""
        return f"HTTP {response.status_code} {str(document['type']).rsplit(':', 1)[-1]}: {detail}{more}"
    return f"HTTP {response.status_code}"


def _verify_receipt(base: str, document: dict[str, Any], payload: bytes, timeout: float) -> dict[str, Any]:
    """The receipt's claims, once its signature checks against the service's published keys and it names
    exactly what was sent (the SHA-256 of the payload)."""
    jwks_response = _request("GET", f"{base}/.well-known/jwks.json", timeout=timeout)
    try:
        claims = signed_claims(str(document.get("receipt_jws", "")), jwks_response.json(), typ=RECEIPT_TYP)
    except (ProblemError, ValueError) as exc:
        raise ReceiptNotVerified(
            "The receipt's signature does not check against the service's published keys."
        ) from exc
    if claims != document.get("receipt"):
        raise ReceiptNotVerified("The signed receipt differs from the receipt in the answer.")
    if claims.get("payload_sha256") != hashlib.sha256(payload).hexdigest():
        raise ReceiptNotVerified("The receipt names another payload than the one sent.")
    return claims


def _wait_for_job(
    base: str, job_id: str, tokens: Callable[[], str], args: argparse.Namespace, progress: _Progress
) -> dict[str, Any]:
    deadline = time.monotonic() + args.wait_timeout
    last = None
    while True:
        response = _request(
            "GET",
            f"{base}/v1/jobs/{job_id}",
            timeout=args.timeout,
            headers={"Authorization": f"Bearer {tokens()}"},
        )
        job: dict[str, Any] = response.json() if response.is_success else {}
        if not response.is_success:
            raise SubmissionNotAccepted(f"Reading the job: {_problem_line(response, _json(response))}")
        state = (job.get("status"), job.get("stage"), job.get("progress_done"), job.get("progress_total"))
        if state != last:
            done, total = job.get("progress_done"), job.get("progress_total")
            progress.say(
                f"job {job_id}: {job.get('status')}"
                + (f", {job.get('stage')}" if job.get("stage") else "")
                + (f" {done}/{total}" if total else "")
            )
            last = state
        if job.get("status") in _FINISHED_JOB:
            return job
        if time.monotonic() > deadline:
            raise JobWaitTimedOut(
                f"Job {job_id} was still {job.get('status')} ({job.get('stage')}) after {args.wait_timeout:g} s;"
                f" the submission is stored. Follow it with GET /v1/jobs/{job_id}."
            )
        time.sleep(args.poll)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"status": response.status_code, "body": response.text[:500]}


def _summary(document: dict[str, Any], verified: bool, job: dict[str, Any] | None) -> str:
    receipt = document.get("receipt") or {}
    text = (
        f"submission {document.get('submission_id')} {document.get('status')}: "
        f"{receipt.get('record_count')} record(s), {receipt.get('accepted')} accepted, "
        f"{receipt.get('flagged')} flagged, {receipt.get('rejected')} rejected"
    )
    text += "; receipt signature verified" if verified else "; receipt NOT verified"
    if job is not None:
        text += f"; job {job.get('id')} {job.get('status')}"
        outcomes = (job.get("result") or {}).get("outcomes")
        if isinstance(outcomes, dict):
            text += " (" + ", ".join(f"{n} {name}" for name, n in outcomes.items()) + ")"
    return text


def _submit(args: argparse.Namespace) -> int:
    tokens = _token_source(args)
    if tokens is None and not args.token:
        raise CredentialsMissing("Give --partner, --key and --kid (a fresh token per request), or --token.")
    loaded = partner_cli.load_input(args, sender=args.partner, allow_jws=True)
    if not args.no_validate:
        report = partner_cli.check(loaded, sender=args.partner)
        partner_cli.refuse_if_invalid(report, loaded, "sent")
    if loaded.compact is not None:
        body = loaded.compact
    else:
        if not (args.key and args.kid and args.partner):
            raise CredentialsMissing(
                f"{loaded.path} is not signed: give --partner, --key and --kid to sign it (or send what "
                "`cme sign` printed)."
            )
        body = sign_compact(
            loaded.payload, load_private_key(Path(args.key)), kid=args.kid, typ=SUBMISSION_TYP
        ).encode("ascii")
    base = args.url.rstrip("/")
    progress = _Progress(args.progress or sys.stderr.isatty())
    token = tokens() if tokens is not None else args.token
    response = _request(
        "POST",
        f"{base}/v1/submissions",
        timeout=args.timeout,
        content=_chunks(body, progress if len(body) >= PROGRESS_MIN_BYTES else _Progress(False)),
        headers={
            "Content-Type": "application/jose",
            "Content-Length": str(len(body)),
            "Authorization": f"Bearer {token}",
        },
    )
    document = _json(response)
    if not response.is_success:
        print(json.dumps(document, indent=2, ensure_ascii=False))
        raise SubmissionNotAccepted(_problem_line(response, document))
    _verify_receipt(base, document, loaded.payload, args.timeout)
    job = None
    if args.no_wait or not document.get("job_id"):
        pass
    elif tokens is None:
        print(
            "not waiting for the job: --token is good for one request; give --key to follow it",
            file=sys.stderr,
        )
    else:
        progress.say(f"stored; waiting for job {document['job_id']}")
        job = _wait_for_job(base, str(document["job_id"]), tokens, args, progress)
    print(json.dumps({**document, "receipt_verified": True, "job": job}, indent=2, ensure_ascii=False))
    print(_summary(document, True, job), file=sys.stderr)
    return 1 if job is not None and job.get("status") == "failed" else 0


def _sign(args: argparse.Namespace) -> int:
    """Sign a JSON or CSV submission, once the service's own rules find nothing that would refuse it."""
    loaded = partner_cli.load_input(args, sender=args.partner)
    partner_cli.refuse_if_invalid(partner_cli.check(loaded, sender=args.partner), loaded, "signed")
    # The bytes are signed as they are (for CSV: the JSON made from it).
    print(sign_compact(loaded.payload, load_private_key(Path(args.key)), kid=args.kid, typ=SUBMISSION_TYP))
    return 0


def add_commands(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="Synthetic data for trials (never real children).")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    generate_parser = demo_commands.add_parser(
        "generate", help="Write a seeded synthetic population as submission files (one per sender)."
    )
    generate_parser.add_argument("--children", type=int, default=1000)
    generate_parser.add_argument("--seed", type=int, default=1)
    generate_parser.add_argument("--out", default="var/demo")
    generate_parser.set_defaults(handler=_generate)

    validate = subparsers.add_parser(
        "validate",
        help="Check a submission file (JSON, CSV or a signed compact JWS) offline with the service's own "
        "rules; every bad row named (record index, field, code). Exit 1 when the service would refuse the "
        "file or reject any record.",
    )
    validate.add_argument("file")
    validate.add_argument("--json", action="store_true", help="The report as one JSON document.")
    partner_cli.add_input_options(validate)
    validate.set_defaults(handler=_validate)

    sign = subparsers.add_parser(
        "sign",
        help="Check a JSON or CSV submission file with the service's rules and print its compact JWS; "
        "an invalid file is refused with every error named.",
    )
    sign.add_argument("--partner", required=True, help="The signing partner (its key must be registered).")
    sign.add_argument("--key", required=True, help="The partner's private key (PEM).")
    sign.add_argument("--kid", required=True)
    sign.add_argument("file")
    partner_cli.add_input_options(sign, sender_option=False)
    sign.set_defaults(handler=_sign)

    schemas = subparsers.add_parser(
        "schemas", help="Write the JSON Schema of each submission kind (generated from the service's models)."
    )
    schemas.add_argument("--out", default=str(partner_cli.SCHEMA_DIR))
    schemas.set_defaults(handler=_schemas)

    submit = subparsers.add_parser(
        "submit",
        help="Validate, sign if need be, send a submission, verify the signed receipt and wait for its job.",
    )
    submit.add_argument("file", help="A JSON or CSV submission, or the compact JWS `cme sign` printed.")
    submit.add_argument("--partner", help="The sending partner (with --key and --kid: fresh tokens).")
    submit.add_argument("--key", help="The partner's private key (PEM): signs the file and each token.")
    submit.add_argument("--kid")
    submit.add_argument("--token", help="A bearer token (`cme token`): one request, so no waiting.")
    submit.add_argument("--url", default="http://127.0.0.1:8000")
    submit.add_argument("--timeout", type=float, default=600.0, help="Seconds per HTTP request.")
    submit.add_argument("--no-validate", action="store_true", help="Send without the offline check.")
    submit.add_argument("--no-wait", action="store_true", help="Do not wait for the matching job.")
    submit.add_argument("--wait-timeout", type=float, default=1200.0, help="Seconds to wait for the job.")
    submit.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    submit.add_argument(
        "--progress", action="store_true", help="Show progress on stderr even when it is not a terminal."
    )
    partner_cli.add_input_options(submit, sender_option=False)
    submit.set_defaults(handler=_submit)
