"""CME list benchmark: `GET /v1/cme/records` and `GET /v1/cme/candidates` (filtered, page of 50).

    python bench/cme_list.py [--total 500000] [--cardiff 60000] [--rate 100] [--seconds 20] [--workers 1]

Builds a throw-away PostgreSQL database, bulk-inserts synthetic CME records and as many candidates
(`--cardiff` of each in Cardiff W06000015, `--total` of each across Wales), starts uvicorn, then for each
endpoint fires requests open-loop (`loadgen`: latency counted from when each request was due) at `--rate`
per second over loopback, each with its own pre-minted bearer token of a Cardiff case officer and a
filter (records: status=active; candidates: status=open); only full pages of 50 count as served. Prints
p50/p90/p99/max latency and server CPU per request for each endpoint. Target: p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import loadgen
import orjson
from benchdb import fresh_database, register_new_key, settle
from loadgen import build_request
from realtime import AUDIENCE, CALLER, KID, server_cpu_seconds, tokens
from sqlalchemy import insert

from app.cme.domain import CandidateStatus, RecordStatus, identity_key, postcode_district
from app.cme.models import CmeCandidate, CmeRecord
from app.core.config import wales_reference
from app.core.db import make_engine
from app.synthetic.names import BOYS, GIRLS, SURNAMES

BATCH = 10_000
DISTRICTS = ("CF10", "CF11", "CF14", "CF23", "CF24", "CF3", "CF5", "NP20", "SA1", "LL57", "SY23", "LD1")
QUERIES = {
    "records": "/v1/cme/records?status=active&limit=50",
    "candidates": "/v1/cme/candidates?status=open&limit=50",
}


def _child(rng: random.Random) -> dict[str, Any]:
    given, family = rng.choice(GIRLS + BOYS), rng.choice(SURNAMES)
    dob = dt.date(2009, 9, 1) + dt.timedelta(days=rng.randrange(12 * 365))
    postcode = (
        f"{rng.choice(DISTRICTS)} {rng.randrange(1, 9)}{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRSTU')}"
    )
    return {
        "given_name": given, "middle_names": None, "family_name": family, "former_names": [],
        "date_of_birth": dob, "address_lines": [f"{rng.randrange(1, 200)} Heol Synthetig"], "town": "Caerdydd",
        "postcode": postcode, "postcode_district": postcode_district(postcode), "address_is_last_known": False,
        "identity_key": identity_key(given, family, dob),
    }  # fmt: skip


def _las(total: int, cardiff: int, rng: random.Random) -> Iterator[str]:
    others = [la["gss_code"] for la in wales_reference()["local_authorities"] if la["gss_code"] != CALLER]
    for i in range(total):
        yield CALLER if i < cardiff else rng.choice(others)


def store(url: str, total: int, cardiff: int, seed: int) -> None:
    """Bulk insert `total` records and `total` candidates (Core executemany in batches, no ORM objects)."""
    rng = random.Random(seed)
    engine = make_engine(url)
    start = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    records: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for i, la in enumerate(_las(total, cardiff, rng)):
            at = start + dt.timedelta(seconds=rng.randrange(180 * 86_400))
            records.append({
                **_child(rng), "id": uuid.uuid4(), "la_id": la, "status": RecordStatus.ACTIVE, "created_at": at,
                "created_by": "bench-officer", "candidate_id": None, "sensitive": i % 50 == 0,
                "suspected_inaccurate": False, "restricted": False, "parents": [], "education_providers": [],
                "provenance": {}, "csa_removal_on": None, "version": 1,
            })  # fmt: skip
            candidates.append({
                **_child(rng), "id": uuid.uuid4(), "la_id": la, "status": CandidateStatus.OPEN,
                "opened_at": at, "submission_id": uuid.uuid4(), "sightings": 1, "version": 1,
            })  # fmt: skip
            if len(records) == BATCH:
                conn.execute(insert(CmeRecord), records)
                conn.execute(insert(CmeCandidate), candidates)
                records, candidates = [], []
        if records:
            conn.execute(insert(CmeRecord), records)
            conn.execute(insert(CmeCandidate), candidates)
    engine.dispose()
    settle(url, "cme_record", "cme_candidate")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(database_url: str, key_file: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    """uvicorn on a free port (another benchmark may hold a fixed one), no in-process worker."""
    env = {**os.environ, "CME_DATABASE_URL": database_url, "CME_RUN_WORKER_IN_PROCESS": "false",
           "CME_SERVICE_KEY_FILE": str(key_file), "CME_AUDIENCE": AUDIENCE, "CME_LOG_LEVEL": "WARNING"}  # fmt: skip
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", str(port)]
    options = ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen([*command, *options], env=env)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("server did not start")


def _full_page(status: int, body: bytes) -> bool:
    return status == 200 and len(orjson.loads(body)["items"]) == 50


def run(total: int, cardiff: int, rate: float, seconds: float, seed: int, workers: int) -> dict[str, Any]:
    with fresh_database() as url:
        key = register_new_key(url, CALLER, KID)
        stored = time.perf_counter()
        store(url, total, cardiff, seed)
        result: dict[str, Any] = {
            "stored_each": total, "cardiff_each": cardiff, "uvicorn_workers": workers,
            "store_seconds": round(time.perf_counter() - stored, 1), "rate_per_s": rate,
        }  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            server = start_server(url, Path(tmp) / "service-key.pem", port, workers)
            try:
                for endpoint, path in QUERIES.items():
                    # Fresh connections, so that every worker process answers once before the clock runs.
                    for _ in range(10 * workers):
                        warm = httpx.get(
                            f"http://127.0.0.1:{port}{path}",
                            headers={"Authorization": f"Bearer {tokens(key, 1)[0]}"},
                        )
                        if warm.status_code != 200:
                            raise RuntimeError(f"warm-up failed: HTTP {warm.status_code} {warm.text[:300]}")
                    # Fresh tokens per run: they live 300 s, and each jti is accepted once.
                    requests = [
                        build_request("GET", "127.0.0.1", port, path, {"Authorization": f"Bearer {token}"})
                        for token in tokens(key, int(rate * seconds))
                    ]
                    cpu_before = server_cpu_seconds(server.pid)
                    figures = loadgen.fire("127.0.0.1", port, requests, rate, accept=_full_page).figures()
                    cpu_ms = (server_cpu_seconds(server.pid) - cpu_before) * 1000 / len(requests)
                    result[endpoint] = {**figures, "server_cpu_ms_per_request": round(cpu_ms, 2)}
            finally:
                server.terminate()
                server.wait(30)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--total", type=int, default=500_000)
    parser.add_argument("--cardiff", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    result = run(args.total, args.cardiff, args.rate, args.seconds, args.seed, args.workers)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
