"""Ingest benchmark: a signed health register of N synthetic children sent over HTTP to a running service.

    python bench/ingest.py [--sizes 100000 500000] [--repeat N] [--cache var/bench]

For each size it starts a fresh uvicorn server on PostgreSQL (its own throw-away database), sends one
signed `health_register` submission, and prints records/s from request start to receipt, the server
process's CPU seconds for the request (all its threads), those of the PostgreSQL backends serving the
benchmark database (the server must be local), and the server's peak RSS (VmHWM). In the same run it times a plain PostgreSQL COPY of the same rows into a copy of the
`health_child` table: the physical reference. Targets (2 cores): >= 50,000 records/s and < 1.5 GiB peak
RSS at 500,000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from benchdb import ADMIN_DSN, fresh_database, plain_dsn, register_new_key
from cryptography.hazmat.primitives.asymmetric import ec

from app.core.identifiers import normalise_postcode
from app.core.jose_adapter import sign_compact
from app.security.jws import SUBMISSION_TYP
from app.security.tokens import TOKEN_TYP
from app.submissions.service import HEALTH_COLUMNS
from app.synthetic.population import PopulationConfig, generate

SENDER, RECIPIENT, KID = "W11000029", "W06000015", "bench-key"
AUDIENCE = "https://cme-hub.invalid"
PORT = 8765


def health_records(n: int, seed: int, cache: Path | None = None) -> list[dict[str, Any]]:
    """N synthetic health-list records; with `cache`, kept there as JSON for the next run."""
    cached = cache / f"health_records_{n}_{seed}.json" if cache else None
    if cached is not None and cached.exists():
        loaded: list[dict[str, Any]] = orjson.loads(cached.read_bytes())
        return loaded
    records = _generate(n, seed)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(orjson.dumps(records))
    return records


def _generate(n: int, seed: int) -> list[dict[str, Any]]:
    population = generate(PopulationConfig(children=int(n / 1.05) + 10, seed=seed))
    records = population.health_records
    while len(records) < n:  # top up from a second seed rather than repeat anyone
        seed += 1
        records = records + generate(PopulationConfig(children=n // 10 + 10, seed=seed)).health_records
    return records[:n]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(database_url: str) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend connected to the benchmark's database (a local server)."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        pids = [
            row[0] for row in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))
        ]
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = cpu_seconds(pid)
        except OSError:  # gone, or not on this machine
            continue
    return seconds


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def start_server(database_url: str, key_file: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CME_DATABASE_URL": database_url,
        "CME_MAX_BODY_BYTES": str(1024**3),
        "CME_RUN_WORKER_IN_PROCESS": "false",
        "CME_SERVICE_KEY_FILE": str(key_file),
        "CME_AUDIENCE": AUDIENCE,
        "CME_LOG_LEVEL": "WARNING",
        # Synthetic lists are sent today, after the Regulations' window: open it for the benchmark.
        "CME_LEGAL_WINDOW_END": "2100-01-01",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "app.main:create_app",
            "--port",
            str(PORT),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("server did not start")


def token(key: ec.EllipticCurvePrivateKey) -> str:
    iat = int(time.time())
    claims = {
        "iss": SENDER,
        "sub": SENDER,
        "aud": AUDIENCE,
        "iat": iat,
        "exp": iat + 300,
        "jti": str(uuid.uuid4()),
    }
    return sign_compact(orjson.dumps(claims), key, kid=KID, typ=TOKEN_TYP)


def copy_reference(dsn: str, records: list[dict[str, Any]]) -> float:
    """Seconds for a plain COPY of the same rows into a structural copy of health_child."""
    submission_id = uuid.uuid4()
    rows = []
    for index, r in enumerate(records):
        address = r.get("address") or {}
        rows.append(
            (
                submission_id, index, RECIPIENT, r.get("given_name"), r.get("middle_names"), r.get("family_name"),
                orjson.dumps(r.get("former_names", [])).decode(), r.get("date_of_birth"),
                orjson.dumps(address.get("lines", [])).decode(), address.get("town"), address.get("postcode"),
                normalise_postcode(address.get("postcode")), False, None, "[]",
            )
        )  # fmt: skip
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE bench_copy (LIKE health_child INCLUDING DEFAULTS)")
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY bench_copy ({', '.join(HEALTH_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return elapsed


def run(size: int, seed: int, cache: Path | None = None) -> dict[str, Any]:
    with fresh_database() as url:
        key = register_new_key(url, SENDER, KID)

        records = health_records(size, seed, cache)
        payload = {
            "submission_id": str(uuid.uuid4()),
            "kind": "health_register",
            "sender": SENDER,
            "recipient": RECIPIENT,
            "as_of": "2025-04-30",
            "records": records,
        }
        body = sign_compact(orjson.dumps(payload), key, kid=KID, typ=SUBMISSION_TYP).encode()
        with tempfile.TemporaryDirectory() as tmp:
            server = start_server(url, Path(tmp) / "service-key.pem")
            profiler = (
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "-p",
                        str(server.pid),
                        "-o",
                        os.environ["CME_BENCH_PROFILE"],
                        "-f",
                        "speedscope",
                        "-r",
                        "200",
                    ]
                )
                if os.environ.get("CME_BENCH_PROFILE")
                else None
            )
            try:
                cpu_before = cpu_seconds(server.pid)
                backends_before = backend_cpu_seconds(url)
                started = time.perf_counter()
                response = httpx.post(
                    f"http://127.0.0.1:{PORT}/v1/submissions",
                    content=body,
                    headers={"Content-Type": "application/jose", "Authorization": f"Bearer {token(key)}"},
                    timeout=900,
                )
                elapsed = time.perf_counter() - started
                server_cpu = cpu_seconds(server.pid) - cpu_before
                backends_after = backend_cpu_seconds(url)
                postgres_cpu = sum(cpu - backends_before.get(pid, 0.0) for pid, cpu in backends_after.items())
                rss = peak_rss_bytes(server.pid)
                if profiler is not None:
                    profiler.send_signal(2)
                    profiler.wait(60)
            finally:
                server.terminate()
                server.wait(30)
        if response.status_code != 201:
            raise RuntimeError(f"ingest failed: HTTP {response.status_code} {response.text[:300]}")
        receipt = response.json()["receipt"]
        copy_seconds = copy_reference(plain_dsn(url), records)
        return {
            "records": size,
            "body_mib": round(len(body) / 2**20, 1),
            "accepted": receipt["accepted"] + receipt["flagged"],
            "rejected": receipt["rejected"],
            "seconds": round(elapsed, 2),
            "records_per_s": round(size / elapsed),
            "server_cpu_s": round(server_cpu, 2),
            "postgres_cpu_s": round(postgres_cpu, 2),
            "server_peak_rss_mib": round(rss / 2**20),
            "copy_seconds": round(copy_seconds, 2),
            "copy_records_per_s": round(size / copy_seconds),
            "ratio_to_copy": round((size / elapsed) / (size / copy_seconds), 3),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 500_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cache", type=Path, help="Keep the generated records here and reuse them (generation takes ~35 s)."
    )
    parser.add_argument("--repeat", type=int, default=1, help="Runs per size, each on a fresh server.")
    args = parser.parse_args()
    for size in args.sizes:
        for _ in range(args.repeat):
            print(json.dumps(run(size, args.seed, args.cache)), flush=True)


if __name__ == "__main__":
    main()
