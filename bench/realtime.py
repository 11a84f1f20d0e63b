"""Real-time matching benchmark: `POST /v1/match` for one child at a fixed rate against a uvicorn server.

    python bench/realtime.py [--education 500000] [--rate 200 [50 ...]] [--seconds 20] [--workers 1]

Builds a throw-away PostgreSQL database holding N synthetic education records (every LA's registers),
starts uvicorn (which builds the in-memory index in the background, answering 503 until it is ready),
polls until every worker answers, then fires requests open-loop with `loadgen` (a request is due every
1/rate s, whether or not the previous one answered; latency counted from when it was due) over
loopback, each with its own pre-minted bearer token of an LA officer and one child taken from the
registers (a third of them another LA's). Prints p50/p90/p99/max latency of the answered requests and
the server's CPU time per request. Targets at 200/s: p50 <= 5 ms, p99 <= 25 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import loadgen
import orjson
from benchdb import fresh_database, register_new_key, settle
from cryptography.hazmat.primitives.asymmetric import ec
from loadgen import build_request
from sqlalchemy import insert

from app.core.db import make_engine, make_session_factory
from app.core.identifiers import normalise_postcode
from app.core.jose_adapter import sign_compact
from app.matching import repository as matching_repository
from app.matching.params import DEFAULT_MODEL
from app.matching.realtime import EducationIndex
from app.matching.service import RealtimeIndex, rows_to_frame
from app.security.tokens import TOKEN_TYP
from app.submissions import repository as submissions_repository
from app.submissions.models import EducationChild, Submission
from app.submissions.service import EDUCATION_COLUMNS
from app.synthetic.population import PopulationConfig, generate

CALLER, KID = "W06000015", "bench-key"
AUDIENCE = "https://cme-hub.invalid"
PORT = 8766
HEALTH_SHAPE = ("given_name", "middle_names", "family_name", "former_names", "date_of_birth", "address")


def education_population(
    n: int, seed: int
) -> tuple[list[dict[str, Any]], list[str], list[str], list[str | None]]:
    """N education records with their register, LA and school (generated, topped up from further seeds)."""
    records: list[dict[str, Any]] = []
    registers: list[str] = []
    las: list[str] = []
    schools: list[str | None] = []
    while len(records) < n:
        population = generate(
            PopulationConfig(children=max(int((n - len(records)) / 0.97) + 10, 1000), seed=seed)
        )
        records += population.education_records
        registers += population.education_registers
        las += population.education_la
        schools += population.education_schools
        seed += 1
    return records[:n], registers[:n], las[:n], schools[:n]


def store_registers(url: str, n: int, seed: int) -> list[tuple[dict[str, Any], str]]:
    """Stores the registers; returns (record, its LA) for every record, to draw queries from."""
    records, registers, las, _ = education_population(n, seed)
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    submissions: dict[tuple[str, str], uuid.UUID] = {}
    with make_session_factory(engine).begin() as session:
        for register, la in sorted(set(zip(registers, las, strict=True))):
            submission_id = uuid.uuid4()
            submissions[(register, la)] = submission_id
            session.execute(
                insert(Submission).values(
                    id=submission_id, sender_id=la, recipient_id=None, kind=register, scope=None,
                    as_of=dt.date(2025, 4, 30), status="stored", received_at=now, request_id=None,
                    payload_sha256="0" * 64, jws_sha256="0" * 64, jws_header={}, signer_kid=KID,
                    signer_thumbprint="0" * 43, record_count=0, accepted_count=0, flagged_count=0,
                    rejected_count=0, receipt={}, receipt_jws="",
                )
            )  # fmt: skip
        rows = []
        for index, (r, register, la) in enumerate(zip(records, registers, las, strict=True)):
            address = r.get("address") or {}
            school = r.get("school") or {}
            provision = r.get("provision") or {}
            rows.append(
                (
                    submissions[(register, la)], index, register, la, r.get("given_name"), r.get("middle_names"),
                    r.get("family_name"), r.get("former_names", []), r.get("date_of_birth"),
                    address.get("lines", []), address.get("town"), address.get("postcode"),
                    normalise_postcode(address.get("postcode")), None, [], r.get("preferred_given_name"),
                    r.get("preferred_family_name"), r.get("sex"), school.get("number"), school.get("name"),
                    r.get("admission_date"), provision.get("type"), provision.get("name"),
                )
            )  # fmt: skip
        submissions_repository.insert_rows(session, EducationChild, EDUCATION_COLUMNS, rows)
    engine.dispose()
    settle(url, "education_child")
    return [({k: r[k] for k in HEALTH_SHAPE if k in r}, la) for r, la in zip(records, las, strict=True)]


def start_server(database_url: str, key_file: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CME_DATABASE_URL": database_url,
        "CME_RUN_WORKER_IN_PROCESS": "false",
        "CME_SERVICE_KEY_FILE": str(key_file),
        "CME_AUDIENCE": AUDIENCE,
        "CME_LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "WARNING"),
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", str(PORT)]
    options = ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    if workers > 1:
        # A worker building its index holds the GIL for long stretches (row conversion); uvicorn's default
        # 5 s health check would kill and restart it in a loop.
        options += ["--timeout-worker-healthcheck", "300"]
    server = subprocess.Popen([*command, *options], env=env)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("server did not start")


# The longest lifetime the service accepts (decision 0001).
TOKEN_LIFETIME_SECONDS = 300


def tokens(key: ec.EllipticCurvePrivateKey, count: int) -> list[str]:
    iat = int(time.time())
    officer = {"id": "bench-officer", "role": "case_officer"}
    return [
        sign_compact(
            orjson.dumps(
                {"iss": CALLER, "sub": CALLER, "aud": AUDIENCE, "iat": iat, "exp": iat + TOKEN_LIFETIME_SECONDS,
                 "jti": str(uuid.uuid4()), "officer": officer}
            ),
            key, kid=KID, typ=TOKEN_TYP,
        )
        for _ in range(count)
    ]  # fmt: skip


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of the server process and its worker processes (Linux /proc)."""
    tree = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    tree.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    ticks = 0
    for member in tree:
        fields = _stat(member)
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# Consecutive answers, per worker, taken to mean every worker process has its index.
_READY_ANSWERS = 20


def wait_for_index(
    key: ec.EllipticCurvePrivateKey, query: dict[str, Any], started: float, workers: int
) -> tuple[float, float | None]:
    """Poll until the index (built in the background from start-up) answers in every worker: seconds from
    server launch to then, and how long the first refused (503) request took, if any was refused.

    Each poll opens a new connection, so the kernel hands it to any worker; enough answers in a row mean
    that every worker has its index before the measured load starts."""
    first_refusal_ms = None
    answered = 0
    while True:
        sent = time.perf_counter()
        response = httpx.post(
            f"http://127.0.0.1:{PORT}/v1/match",
            json={"records": [query]},
            headers={"Authorization": f"Bearer {tokens(key, 1)[0]}"},
            timeout=300,
        )
        if response.status_code == 200:
            answered += 1
            if answered == _READY_ANSWERS * workers:
                return time.perf_counter() - started, first_refusal_ms
            continue
        answered = 0
        if response.status_code != 503:
            raise RuntimeError(f"warm-up failed: HTTP {response.status_code} {response.text[:300]}")
        if first_refusal_ms is None:
            first_refusal_ms = round((time.perf_counter() - sent) * 1000, 1)
        time.sleep(0.5)


def match_requests(
    port: int, key: ec.EllipticCurvePrivateKey, queries: list[dict[str, Any]], count: int
) -> list[bytes]:
    """`count` ready-to-send match requests, each with its own freshly minted token."""
    return [
        build_request(
            "POST", "127.0.0.1", port, "/v1/match",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            orjson.dumps({"records": [queries[i % len(queries)]]}),
        )
        for i, token in enumerate(tokens(key, count))
    ]  # fmt: skip


def load(port: int, pid: int, requests: list[bytes], rate: float) -> dict[str, Any]:
    """One open-loop run at `rate`: latency percentiles of answered requests and server CPU per request."""
    cpu_before = server_cpu_seconds(pid)
    result = loadgen.fire("127.0.0.1", port, requests, rate)
    cpu_ms_per_request = (server_cpu_seconds(pid) - cpu_before) * 1000 / len(requests)
    return {"rate_per_s": rate, **result.figures(), "server_cpu_ms_per_request": round(cpu_ms_per_request, 2)}


def build_breakdown(url: str) -> dict[str, float]:
    """The server's index build, step by step, in this process: rows from PostgreSQL, canonical frame,
    engine index (keys, frequencies), everything else."""
    engine = make_engine(url)
    started = time.perf_counter()
    with make_session_factory(engine)() as session:
        rows = matching_repository.education_rows(session)
    loaded = time.perf_counter()
    frame = rows_to_frame(rows, matching_repository.EDUCATION_MATCH_COLUMNS, la_column="la_id")
    framed = time.perf_counter()
    EducationIndex.build(frame)
    indexed = time.perf_counter()
    RealtimeIndex(rows, DEFAULT_MODEL, (0, None))
    engine.dispose()
    return {
        "load_rows": round(loaded - started, 1),
        "canonical_frame": round(framed - loaded, 1),
        "education_index": round(indexed - framed, 1),
        "realtime_index_total": round(time.perf_counter() - indexed, 1),
    }


def run(
    education: int, rates: list[float], seconds: float, seed: int, workers: int, breakdown_wanted: bool
) -> dict[str, Any]:
    with fresh_database() as url:
        key = register_new_key(url, CALLER, KID)
        stored = time.perf_counter()
        drawn = store_registers(url, education, seed)
        store_seconds = time.perf_counter() - stored
        breakdown = build_breakdown(url) if breakdown_wanted else None
        rng = random.Random(seed)
        own = [r for r, la in drawn if la == CALLER]
        other = [r for r, la in drawn if la != CALLER]
        queries = [rng.choice(own) if i % 3 else rng.choice(other) for i in range(2000)]
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            server = start_server(url, Path(tmp) / "service-key.pem", workers)
            try:
                build_seconds, first_refusal_ms = wait_for_index(key, queries[0], started, workers)
                # Every run's requests are built (tokens minted) before the first run, so the runs follow
                # each other without the server sitting idle in between: at a steady 200 requests/s it
                # never does, and an idle second before a run made its first requests slower. Tokens live
                # 300 s: runs longer than that in all are built one by one, just before each.
                if seconds * len(rates) <= TOKEN_LIFETIME_SECONDS - 60:
                    batches = [match_requests(PORT, key, queries, int(rate * seconds)) for rate in rates]
                    runs = [
                        load(PORT, server.pid, batch, rate)
                        for batch, rate in zip(batches, rates, strict=True)
                    ]
                else:
                    runs = [
                        load(PORT, server.pid, match_requests(PORT, key, queries, int(rate * seconds)), rate)
                        for rate in rates
                    ]
            finally:
                server.terminate()
                server.wait(30)
        return {
            "education_records": education,
            "uvicorn_workers": workers,
            "store_seconds": round(store_seconds, 1),
            "index_ready_after_start_seconds": round(build_seconds, 1),
            "first_refusal_ms": first_refusal_ms,
            "build_breakdown_seconds": breakdown,
            "runs": runs,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--education", type=int, default=500_000)
    parser.add_argument("--rate", type=float, nargs="+", default=[200.0], help="one run per rate, in order")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (each holds an index)"
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--breakdown", action="store_true", help="also time the index build step by step")
    args = parser.parse_args()
    result = run(args.education, args.rate, args.seconds, args.seed, args.workers, args.breakdown)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
