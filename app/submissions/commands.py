"""`cme demo generate` and `cme submit`: synthetic submissions for trials, and sending a signed one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from app.core.errors import ProblemError
from app.synthetic.population import PopulationConfig, generate
from app.synthetic.submissions import write_submission_files


def _generate(args: argparse.Namespace) -> int:
    population = generate(PopulationConfig(children=args.children, seed=args.seed))
    for path in write_submission_files(population, Path(args.out)):
        print(path)
    return 0


class ServiceUnreachable(ProblemError):
    status, slug, title = 503, "service-unreachable", "The service did not answer"


def _submit(args: argparse.Namespace) -> int:
    body = Path(args.file).read_bytes().strip()
    url = f"{args.url.rstrip('/')}/v1/submissions"
    try:
        response = httpx.post(
            url,
            content=body,
            headers={"Content-Type": "application/jose", "Authorization": f"Bearer {args.token}"},
            timeout=args.timeout,
        )
    except httpx.TransportError as exc:  # one line that says what to check, not a traceback
        raise ServiceUnreachable(
            f"{url}: {type(exc).__name__}: {exc}. Is the service running there?"
        ) from exc
    try:
        document: Any = response.json()
    except ValueError:
        document = {"status": response.status_code, "body": response.text[:500]}
    print(json.dumps(document, indent=2, ensure_ascii=False))
    if response.is_success:
        return 0
    print(f"HTTP {response.status_code}", file=sys.stderr)
    return 1


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

    submit = subparsers.add_parser(
        "submit", help="POST a signed submission (compact JWS file) to the service."
    )
    submit.add_argument("file", help="The compact JWS, as printed by `cme sign`.")
    submit.add_argument("--token", required=True, help="A bearer token, as printed by `cme token`.")
    submit.add_argument("--url", default="http://127.0.0.1:8000")
    submit.add_argument("--timeout", type=float, default=600.0)
    submit.set_defaults(handler=_submit)
