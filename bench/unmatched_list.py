"""Unmatched-list benchmark (issue 9, second target): one large health list that no register matches.

    python bench/unmatched_list.py [--rows 25000] [--database postgres|sqlite|both] [--rate 20]

Target: a 25,000-row health list that is all unmatched (no register holds any of the children) has its
candidates readable within 5 s of the receipt on PostgreSQL; on SQLite other requests keep answering
(p99 < 1 s) while its job runs.

For each database:
1. starts `cme serve` as users do (its in-process job worker) with the health-list legal window open and
   `CME_MATCH_ROUND_WAIT_SECONDS=0` (the list is matched as soon as it arrives): on a throw-away PostgreSQL
   database (`benchdb`), or on a fresh SQLite file in a temporary folder, which the service migrates and
   seeds with the demo partners itself when it starts; then registers one ES256 key for the health board
   and one for the LA's case system;
2. builds one health list of `--rows` synthetic children (`ingest.health_records`), each of compulsory
   school age on the list's `as_of` and each a distinct child to the service (exact names and date of
   birth, `identity_key`), from one health board to one pilot LA, and sends no register at all, so every
   accepted row should become a CME candidate of that LA;
3. runs a background load, open loop at `--rate` requests/s (as `loadgen`: latency counted from when each
   request was due; every request with a fresh bearer token, minted before it is due), cycling through
   GET /readyz, GET /v1/cme/candidates?limit=50 as a case officer of the LA, and GET /v1/jobs/{id} as the
   health board (from the receipt on; its turns before the receipt are left out);
4. after `--idle` seconds of that load, sends the signed list; times the 201 receipt; polls the job
   (noting every stage it is seen in) until it has finished; reads the first candidate page, then every
   page, as the case officer.

Reported: POST -> 201; 201 -> job seen succeeded, -> first candidate page, -> every page read (and whether
the candidates counted are the rows accepted); the job's own stage seconds; the background requests per
phase (idle, intake = POST -> 201, job = 201 -> job seen succeeded, reading) with count, errors by
status and p50/p90/p99/max latency, per endpoint in the job window. A JSON summary is the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from benchdb import fresh_database, register_new_key
from ingest import health_records
from loadgen import _read_response, build_request, percentile
from pipeline import (
    CASE_SYSTEM_KID,
    FINISHED,
    OFFICER,
    PAGE_LIMIT,
    POLL_SECONDS,
    RETRIES,
    SENDER_KID,
    Hub,
    Key,
    Service,
    Stopwatch,
    bearer,
    log_findings,
    read_candidates,
    resources_used,
    running_service,
)

from app.cme.domain import identity_key
from app.core.csa import is_compulsory_school_age
from app.core.jose_adapter import sign_compact
from app.security.jws import SUBMISSION_TYP

SENDER, LA, AS_OF = "W11000023", "W06000001", dt.date(2025, 4, 30)
ENDPOINTS = ("readyz", "candidates", "job")
PHASES = ("idle", "intake", "job", "reading")
TARGET_READABLE_S, TARGET_P99_MS = 5.0, 1000.0
REQUEST_TIMEOUT_S = 120.0  # a background request unanswered this long counts as an error (status 0)


# --- The list --------------------------------------------------------------------------------------------


def _child_key(record: dict[str, Any]) -> str | None:
    """The service's "same child" key, if the record is of compulsory school age on AS_OF; else None."""
    try:
        dob = dt.date.fromisoformat(str(record.get("date_of_birth")))
    except ValueError:
        return None
    if not is_compulsory_school_age(dob, AS_OF):
        return None
    return identity_key(record.get("given_name"), record.get("family_name"), dob)


def list_records(rows: int, seed: int) -> list[dict[str, Any]]:
    """`rows` synthetic health records, each of compulsory school age and a distinct child to the service
    (a child listed twice, or two children with one key, would share a candidate)."""
    drawn = int(rows * 1.2) + 100
    while True:
        kept, keys = [], set()
        for record in health_records(drawn, seed):
            key = _child_key(record)
            if key is not None and key not in keys:
                keys.add(key)
                kept.append(record)
                if len(kept) == rows:
                    return kept
        drawn = int(drawn * 1.5)


def signed_list(records: list[dict[str, Any]], key: Key) -> bytes:
    payload = {
        "submission_id": str(uuid.uuid4()),
        "kind": "health_register",
        "sender": SENDER,
        "recipient": LA,
        "as_of": AS_OF.isoformat(),
        "records": records,
    }
    return sign_compact(orjson.dumps(payload), key, kid=SENDER_KID, typ=SUBMISSION_TYP).encode()


# --- The background load ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    endpoint: str
    due: float  # time.monotonic() when the request was due
    status: int  # 0: no answer (timeout, connection lost)
    latency_ms: float  # due -> whole answer read (or given up)
    lag_ms: float  # due -> request written


@dataclass
class BackgroundLoad:
    """Open-loop GETs at `rate`/s in a thread of their own (an asyncio loop over keep-alive connections),
    each request built with its fresh token before it is due; `job_path` is set once the receipt names
    the job."""

    port: int
    rate: float
    sender_key: Key
    officer_key: Key
    job_path: str | None = None
    answers: list[Answer] = field(default_factory=list)
    connections: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(REQUEST_TIMEOUT_S + 30)

    def _request(self, endpoint: str) -> bytes | None:
        if endpoint == "readyz":
            path, headers = "/readyz", {}
        elif endpoint == "candidates":
            token = bearer(LA, self.officer_key, CASE_SYSTEM_KID, OFFICER)
            path, headers = "/v1/cme/candidates?limit=50", {"Authorization": f"Bearer {token}"}
        elif self.job_path is None:
            return None
        else:
            token = bearer(SENDER, self.sender_key, SENDER_KID)
            path, headers = self.job_path, {"Authorization": f"Bearer {token}"}
        return build_request("GET", "127.0.0.1", self.port, path, headers)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()  # its clock is time.monotonic(), as the main thread's moments
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            self.connections += 1
            return await asyncio.open_connection("127.0.0.1", self.port)

        async def exchange(request: bytes) -> int:
            reused = bool(idle)
            reader, writer = idle.pop() if reused else await connect()
            writer.write(request)
            try:
                status, _, keep_alive = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionResetError):
                if not reused:
                    raise
                # The server closed an idle keep-alive connection before reading the request: send again.
                writer.close()
                reader, writer = await connect()
                writer.write(request)
                status, _, keep_alive = await _read_response(reader)
            if keep_alive:
                idle.append((reader, writer))
            else:
                writer.close()
            return status

        async def one(endpoint: str, request: bytes, due: float) -> None:
            lag_ms = (loop.time() - due) * 1000
            try:
                status = await asyncio.wait_for(exchange(request), REQUEST_TIMEOUT_S)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                status = 0
            self.answers.append(Answer(endpoint, due, status, (loop.time() - due) * 1000, lag_ms))

        idle.extend(await asyncio.gather(*(connect() for _ in range(8))))
        begin = loop.time() + 0.05
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while not self._stop.is_set():
            endpoint = ENDPOINTS[i % len(ENDPOINTS)]
            request = self._request(endpoint)  # minted before it is due
            due = begin + i / self.rate
            i += 1
            pause = due - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            if request is not None:
                task = asyncio.create_task(one(endpoint, request, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        for _, writer in idle:
            writer.close()


def figures(answers: list[Answer]) -> dict[str, Any]:
    """Count, errors (non-2xx, by status; 0 = no answer) and latency of the 2xx answers."""
    served = [a.latency_ms for a in answers if 200 <= a.status < 300]
    errors = Counter(a.status for a in answers if not 200 <= a.status < 300)
    result: dict[str, Any] = {"count": len(answers), "errors": sum(errors.values())}
    if errors:
        result["error_statuses"] = {str(k): v for k, v in sorted(errors.items())}
    if served:
        result |= {
            "p50_ms": round(statistics.median(served), 1),
            "p90_ms": round(percentile(served, 90), 1),
            "p99_ms": round(percentile(served, 99), 1),
            "max_ms": round(max(served), 1),
        }
    if answers:
        result["client_lag_p99_ms"] = round(percentile([a.lag_ms for a in answers], 99), 1)
    return result


def load_by_phase(load: BackgroundLoad, moments: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The answers grouped by the phase their request was due in; per endpoint and all together."""
    bounds = [moments[name] for name in ("load_start", "post_sent", "receipt", "job_succeeded", "read_done")]
    grouped: dict[str, dict[str, Any]] = {}
    for phase, start, end in zip(PHASES, bounds, bounds[1:], strict=False):
        inside = [a for a in load.answers if start <= a.due < end]
        grouped[phase] = {
            "seconds": round(end - start, 2),
            "all": figures(inside),
            **{e: figures([a for a in inside if a.endpoint == e]) for e in ENDPOINTS},
        }
    return grouped


# --- One database ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class PatientHub(Hub):
    """`Hub` whose GETs are asked again after a 5xx answer (counted), so the measurement's own reads
    finish; the background load counts such answers as errors instead."""

    retried_5xx: Counter[str] = field(default_factory=Counter)

    def request(self, method: str, path: str, partner: str, **kwargs: Any) -> httpx.Response:
        for _ in range(RETRIES):
            response = Hub.request(self, method, path, partner, **kwargs)
            if method != "GET" or response.status_code < 500:
                break
            self.retried_5xx[f"{method} {path.split('/')[2]} {response.status_code}"] += 1
            time.sleep(0.1)
        return response


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "postgres":
        with fresh_database() as url:
            yield url
    else:  # `cme serve` migrates it and seeds the demo partners when it starts
        yield f"sqlite:///{folder / 'cme.db'}"


def wait_for_job(
    hub: PatientHub, job_id: str, since: float, timeout: float
) -> tuple[dict[str, Any], list[Any]]:
    """Poll the job until it has finished; its last state and each (status, stage, progress) change, with
    the seconds since `since` it was first seen."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        job = hub.get_json(f"/v1/jobs/{job_id}", SENDER)
        state = [job["status"], job["stage"], job["progress_done"], job["progress_total"]]
        if not seen or seen[-1][1:] != state:
            seen.append([round(time.monotonic() - since, 2), *state])
        if job["status"] in FINISHED:
            return job, seen
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} not finished after {timeout} s: {job}")
        time.sleep(POLL_SECONDS)


def first_page(hub: PatientHub, timeout: float) -> int:
    """Items on the first candidate page, asked again until it holds some."""
    deadline = time.monotonic() + timeout
    while True:
        items = hub.get_json("/v1/cme/candidates", LA, officer=True, params={"limit": PAGE_LIMIT})["items"]
        if items or time.monotonic() > deadline:
            return len(items)
        time.sleep(POLL_SECONDS)


@dataclass(slots=True)
class Measured:
    body_bytes: int
    answer: dict[str, Any]
    job: dict[str, Any]
    seen: list[Any]
    first_items: int
    candidates: int
    pages: int
    moments: dict[str, float]
    load: BackgroundLoad
    refused_503: dict[str, int]
    retried_5xx: dict[str, int]


def measure(service: Service, url: str, records: list[dict[str, Any]], args: argparse.Namespace) -> Measured:
    """Keys, background load, the list sent, its job followed, its candidates read."""
    sender_key = register_new_key(url, SENDER, SENDER_KID)
    officer_key = register_new_key(url, LA, CASE_SYSTEM_KID)
    body = signed_list(records, sender_key)
    load = BackgroundLoad(service.port, args.rate, sender_key, officer_key)
    with httpx.Client(base_url=f"http://127.0.0.1:{service.port}", timeout=900) as http:
        hub = PatientHub(http, {SENDER: sender_key}, {LA: officer_key})
        moments = {"load_start": time.monotonic()}
        load.start()
        try:
            time.sleep(args.idle)
            moments["post_sent"] = time.monotonic()
            response = hub.request(
                "POST", "/v1/submissions", SENDER, content=body, headers={"Content-Type": "application/jose"}
            )
            moments["receipt"] = time.monotonic()
            if response.status_code != 201:
                raise RuntimeError(f"POST /v1/submissions: HTTP {response.status_code} {response.text[:300]}")
            answer = response.json()
            load.job_path = f"/v1/jobs/{answer['job_id']}"
            job, seen = wait_for_job(hub, str(answer["job_id"]), moments["receipt"], args.timeout)
            moments["job_succeeded"] = time.monotonic()
            first_items = first_page(hub, args.timeout) if job["status"] == "succeeded" else 0
            moments["first_page"] = time.monotonic()
            candidates, pages = read_candidates(hub, LA)
            moments["read_done"] = time.monotonic()
        finally:
            load.stop()
    return Measured(
        len(body),
        answer,
        job,
        seen,
        first_items,
        len(candidates),
        pages,
        moments,
        load,
        dict(hub.refused_503),
        dict(hub.retried_5xx),
    )


def run_database(kind: str, records: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    clock = Stopwatch()
    service_args = argparse.Namespace(separate_worker=False, round_wait=0.0, server_workers=1)
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        with running_service(url, Path(tmp), service_args, clock) as service:
            try:
                m = measure(service, url, records, args)
            except Exception:
                lines = service.logs["server"].read_text(errors="replace").splitlines()
                kept = "\n".join([line for line in lines if '"cme.access"' not in line][-20:])
                print(f"\n{kind}: the run failed; the server log ends (requests left out):\n{kept}")
                raise
            finally:
                if args.keep_logs is not None:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    for name, log in service.logs.items():
                        shutil.copy(log, args.keep_logs / f"{kind}-{name}.log")
            processes = resources_used(service)
        logs = log_findings(service)  # the service has stopped; its logs are still in the folder
    receipt, job, moments = m.answer["receipt"], m.job, m.moments
    since_receipt = {
        name: round(moments[name] - moments["receipt"], 2)
        for name in ("job_succeeded", "first_page", "read_done")
    }
    result = job.get("result") or {}
    server_span = dt.datetime.fromisoformat(job["finished_at"]) - dt.datetime.fromisoformat(
        m.answer["received_at"]
    )
    return {
        "database": kind,
        "rows": len(records),
        "body_mib": round(m.body_bytes / 2**20, 1),
        "receipt": {k: receipt[k] for k in ("record_count", "accepted", "flagged", "rejected")},
        "post_to_receipt_s": round(moments["receipt"] - moments["post_sent"], 2),
        "receipt_to_job_seen_succeeded_s": since_receipt["job_succeeded"],
        "receipt_to_candidates_readable_s": since_receipt["first_page"],
        "receipt_to_every_page_read_s": since_receipt["read_done"],
        "server_received_to_job_finished_s": round(server_span.total_seconds(), 2),
        "job": {
            "status": job["status"],
            "attempts": job["attempts"],
            "error": job["error"],
            "outcomes": result.get("outcomes"),
            "seconds": result.get("seconds"),
            "seen": m.seen,
        },
        "first_page_items": m.first_items,
        "candidates": m.candidates,
        "candidate_pages": m.pages,
        "candidates_expected": receipt["accepted"] + receipt["flagged"],
        "background": load_by_phase(m.load, moments),
        "background_connections": m.load.connections,
        "http_503_retries": m.refused_503,
        "measurement_gets_retried_after_5xx": m.retried_5xx,
        "service_processes": processes,
        "service_logs": logs,
        "stages": clock.stages,
    }


# --- Report ----------------------------------------------------------------------------------------------


def verdicts(run: dict[str, Any]) -> dict[str, Any]:
    """Both figures against their bounds; `target_met` for the one issue 9 sets for this database."""
    job_window = run["background"]["job"]["all"]
    complete = run["job"]["status"] == "succeeded" and run["candidates"] == run["candidates_expected"]
    readable = complete and run["receipt_to_candidates_readable_s"] <= TARGET_READABLE_S
    answering = job_window["errors"] == 0 and job_window.get("p99_ms", float("inf")) < TARGET_P99_MS
    postgres = run["database"] == "postgres"
    return {
        "candidates_complete": complete,
        "readable_within_5_s": readable,
        "others_p99_under_1_s_no_errors": answering,
        "target": "candidates readable <= 5 s" if postgres else "others p99 < 1 s during the job, no errors",
        "target_met": readable if postgres else answering,
    }


def _row(label: str, f: dict[str, Any]) -> str:
    errors = f"{f['errors']}" + (f" {f['error_statuses']}" if f["errors"] else "")
    latency = " ".join(f"{f.get(k, '-'):>8}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
    return f"  {label:<22} {f['count']:>6} {errors:<14} {latency}"


def print_run(run: dict[str, Any]) -> None:
    receipt, job = run["receipt"], run["job"]
    print(f"\n== {run['database']}: {run['rows']:,} rows ({run['body_mib']} MiB), receipt: {receipt}")
    print(f"  POST -> 201 receipt                      {run['post_to_receipt_s']:>7.2f} s")
    print(f"  201 -> job seen {job['status']:<24} {run['receipt_to_job_seen_succeeded_s']:>7.2f} s"
          f"   (server: received -> finished {run['server_received_to_job_finished_s']} s)")  # fmt: skip
    print(f"  201 -> candidates readable (1st page)    {run['receipt_to_candidates_readable_s']:>7.2f} s"
          f"   ({run['first_page_items']} items on it)")  # fmt: skip
    print(f"  201 -> every page read                   {run['receipt_to_every_page_read_s']:>7.2f} s"
          f"   ({run['candidates']} candidates in {run['candidate_pages']} pages,"
          f" expected {run['candidates_expected']})")  # fmt: skip
    print(f"  job: outcomes {job['outcomes']}, attempts {job['attempts']}, error {job['error']}")
    print(f"  job seconds: {job['seconds']}")
    print("  job seen (s after 201, status, stage, done, total): "
          + "; ".join(" ".join(str(v) for v in state) for state in job["seen"]))  # fmt: skip
    print(f"  background requests (open loop, latency from due, ms)  {'count':>6} {'errors':<14}"
          f" {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")  # fmt: skip
    for phase, facts in run["background"].items():
        if phase == "job":
            for endpoint in ENDPOINTS:
                print(_row(f"job   {endpoint}", facts[endpoint]))
        print(_row(f"{phase:<5} all ({facts['seconds']} s)", facts["all"]))
    logs = run["service_logs"]
    if logs["warnings_and_errors"] or run["http_503_retries"]:
        print(
            f"  service warnings/errors: {logs['warnings_and_errors']}; 503 retries: {run['http_503_retries']}"
        )
    used = ", ".join(
        f"{n} {u['peak_rss_mib']} MiB {u['cpu_s']} CPU s" for n, u in run["service_processes"].items()
    )
    print(f"  service processes: {used}")
    print(f"  verdicts: {run['verdicts']}")


# --- Main ------------------------------------------------------------------------------------------------


def code_state() -> str:
    """The commit measured, and the service files changed since (the working tree is shared)."""

    def git(*words: str) -> str:
        return subprocess.run(
            ["git", *words],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", "app", "migrations").splitlines()
    return git("rev-parse", "--short", "HEAD") + (
        f" + uncommitted {[line.split(maxsplit=1)[-1] for line in dirty]}" if dirty else ""
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=25_000)
    parser.add_argument("--database", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--rate", type=float, default=20, help="background requests per second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--idle", type=float, default=3, help="seconds of background load before the POST")
    parser.add_argument("--keep-logs", type=Path, help="copy the service's logs into this folder")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the job")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    records = list_records(args.rows, args.seed)
    kinds = ("postgres", "sqlite") if args.database == "both" else (args.database,)
    print(f"code: {code_state()}")
    runs = {}
    for kind in kinds:
        run = run_database(kind, records, args)
        run["verdicts"] = verdicts(run)
        print_run(run)
        runs[kind] = run
    summary = {
        "code": code_state(),
        "rows": args.rows,
        "rate": args.rate,
        "seed": args.seed,
        "sender": SENDER,
        "la": LA,
        "runs": runs,
    }
    print(json.dumps(summary, default=str), flush=True)


if __name__ == "__main__":
    main()
