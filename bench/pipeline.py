"""Pipeline benchmark: the whole pilot as users run it, from signed submissions to candidates an LA reads.

    python bench/pipeline.py [--children 100000] [--order given|shuffled] [--separate-worker]

1. Generates the seeded synthetic population and groups it into the submissions partners would send
   (`app.synthetic.submissions`: school rolls, EHE and EOTAS registers, health boards' and GP practices'
   health lists per recipient LA).
2. Creates a throw-away PostgreSQL database (`benchdb`: migrated, demo partners seeded). Senders the demo
   registry lacks (the synthetic GP practices and independent schools) are added to it as `cme partners
   add` would (`--no-onboard`: leave them out; their lists are then reported as skipped). Registers one
   fresh ES256 key per sender and one per reading LA's case system.
3. Starts `cme serve` (its in-process job worker; `--separate-worker`: the server without it plus one
   `cme worker`) on a free port, with the health-list legal window open.
4. Sends every register (signed compact JWS, a fresh bearer token per request), waits for their jobs,
   sends every health list (`--order`), waits for every health-list job and submission status, then
   reads every LA's candidates (`GET /v1/cme/candidates`, every page) as a case officer.
5. Runs the engine alone, in this process, on the same data (all health lists at once) and compares:
   service candidates are mapped back to population rows by content (names, date of birth, postcode,
   recipient LA); rows refused at intake are counted as out of scope; agreement and precision/recall of
   "unknown to education" are given per child (health rows of one child can become one candidate).

Prints the time of every stage, the health-list jobs' own stage timings, the peak RSS of every service
process, an agreement table, and a JSON summary as the last line (`--out FILE` also keeps every job result).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import polars as pl
from benchdb import fresh_database, register_new_key
from cme_list import free_port
from cryptography.hazmat.primitives.asymmetric import ec
from ingest import cpu_seconds, peak_rss_bytes
from realtime import AUDIENCE, TOKEN_LIFETIME_SECONDS

from app.core.config import get_settings
from app.core.db import make_engine, make_session_factory
from app.core.gc_pause import gc_paused
from app.core.jose_adapter import sign_compact
from app.matching.engine import link
from app.matching.frames import records_to_frame
from app.partners import service as partners_service
from app.partners.models import PartnerKind
from app.partners.schemas import PartnerCreate
from app.security.jws import SUBMISSION_TYP
from app.security.tokens import TOKEN_TYP
from app.synthetic.population import PopulationConfig, SyntheticPopulation, generate
from app.synthetic.scoring import LinkOutcome, ScoreReport, Truth, score
from app.synthetic.submissions import SubmissionBatch, submission_batches
from app.synthetic.variants import VARIANTS

HEALTH = "health_register"
SENDER_KID, CASE_SYSTEM_KID = "bench-sender", "bench-case-system"
OFFICER = {"id": "bench-officer", "role": "case_officer"}
# The largest `limit` the candidates list may be asked for (CmeSettings.max_page_size allows up to 1000);
# the server caps it at its configured maximum (200 by default).
PAGE_LIMIT = 1000
POLL_SECONDS = 0.25
FINISHED = frozenset({"succeeded", "failed"})
RETRIES = 20
Key = ec.EllipticCurvePrivateKey


# --- Data ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Stopwatch:
    """Wall seconds of named stages, in order."""

    stages: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = round(time.perf_counter() - started, 2)


def build_submissions(
    children: int, seed: int, clock: Stopwatch, variant: str | None = None
) -> tuple[SyntheticPopulation, list[Any]]:
    """The population (a named generator variant's, `app.synthetic.variants`, when given) and its
    submissions."""
    config = (
        PopulationConfig(children=children, seed=seed)
        if variant is None
        else VARIANTS[variant].config(children, seed)
    )
    with clock.stage("generate population"):
        population = generate(config)
    with clock.stage("group into submissions"):
        batches = submission_batches(population)
    return population, batches


def sender_kind(batch: SubmissionBatch) -> PartnerKind:
    sender = str(batch.payload["sender"])
    if batch.payload["kind"] == HEALTH:
        return PartnerKind.local_health_board if sender.startswith("W11") else PartnerKind.gp_practice
    return PartnerKind.independent_school if sender.isdigit() else PartnerKind.local_authority


def ordered(batches: Sequence[SubmissionBatch], order: str, seed: int) -> list[SubmissionBatch]:
    chosen = list(batches)
    if order == "shuffled":
        random.Random(seed).shuffle(chosen)
    return chosen


# --- Partners and keys -----------------------------------------------------------------------------------


def onboard(url: str, senders: dict[str, PartnerKind], add_missing: bool) -> list[str]:
    """Add the senders the registry lacks, as `cme partners add` would; returns those still unknown."""
    engine = make_engine(url)
    unknown = []
    now = dt.datetime.now(dt.UTC)
    with make_session_factory(engine).begin() as session:
        known = {partner.id for partner in partners_service.list_partners(session)}
        for partner_id, kind in sorted(senders.items()):
            if partner_id in known:
                continue
            if not add_missing:
                unknown.append(partner_id)
                continue
            data = PartnerCreate(id=partner_id, kind=kind, name=f"Synthetic {kind.value} {partner_id}")
            partners_service.create_partner(session, data, pilot_las=get_settings().pilot_las, now=now)
    engine.dispose()
    return unknown


def register_keys(url: str, partners: Iterable[str], kid: str) -> dict[str, Key]:
    return {partner: register_new_key(url, partner, kid) for partner in sorted(partners)}


def bearer(partner: str, key: Key, kid: str, officer: dict[str, str] | None = None) -> str:
    iat = int(time.time())
    claims: dict[str, Any] = {
        "iss": partner, "sub": partner, "aud": AUDIENCE, "iat": iat, "exp": iat + TOKEN_LIFETIME_SECONDS,
        "jti": str(uuid.uuid4()),
    }  # fmt: skip
    if officer is not None:
        claims["officer"] = officer
    return sign_compact(orjson.dumps(claims), key, kid=kid, typ=TOKEN_TYP)


# --- The service's processes -----------------------------------------------------------------------------


@dataclass(slots=True)
class Service:
    port: int
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]


def service_env(url: str, folder: Path, in_process_worker: bool, round_wait: float | None) -> dict[str, str]:
    env = {
        **os.environ,
        "CME_DATABASE_URL": url,
        "CME_AUDIENCE": AUDIENCE,
        "CME_SERVICE_KEY_FILE": str(folder / "service-key.pem"),
        "CME_RUN_WORKER_IN_PROCESS": "true" if in_process_worker else "false",
        # Synthetic lists are sent today, after the Regulations' window: open it.
        "CME_LEGAL_WINDOW_START": "2020-01-01",
        "CME_LEGAL_WINDOW_END": "2100-01-01",
        "CME_LOG_LEVEL": "INFO",
    }
    if round_wait is not None:  # a service without matching rounds ignores it
        env["CME_MATCH_ROUND_WAIT_SECONDS"] = str(round_wait)
    return env


def cme_command() -> list[str]:
    script = Path(sys.executable).with_name("cme")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def spawn(name: str, args: list[str], env: dict[str, str], folder: Path, service: Service) -> None:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        service.processes[name] = subprocess.Popen([*cme_command(), *args], env=env, stdout=out, stderr=out)
    service.logs[name] = log


def wait_healthy(service: Service, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, process in service.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail(service.logs[name])}")
        try:
            if httpx.get(f"http://127.0.0.1:{service.port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not start:\n{tail(service.logs['server'])}")


def tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_service(url: str, folder: Path, args: argparse.Namespace, clock: Stopwatch) -> Iterator[Service]:
    """`cme serve` (and, with `--separate-worker`, one `cme worker`) on a free port until the block ends."""
    service = Service(port=free_port(), processes={}, logs={})
    separate_worker = bool(args.separate_worker)
    env = service_env(url, folder, not separate_worker, args.round_wait)
    serve = ["serve", "--port", str(service.port), "--workers", str(args.server_workers)]
    try:
        with clock.stage("server start (to /healthz)"):
            spawn("server", serve, env, folder, service)
            if separate_worker:
                spawn("worker", ["worker"], env, folder, service)
            wait_healthy(service)
        yield service
    finally:
        for process in service.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in service.processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's worker processes), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def resources_used(service: Service) -> dict[str, dict[str, float]]:
    """Peak RSS (VmHWM) and CPU seconds of every service process, read while they still run."""
    used = {}
    for name, process in service.processes.items():
        for pid in process_tree(process.pid):
            label = name if pid == process.pid else f"{name}/{pid}"
            try:
                used[label] = {
                    "peak_rss_mib": round(peak_rss_bytes(pid) / 2**20),
                    "cpu_s": round(cpu_seconds(pid), 1),
                }
            except (OSError, RuntimeError):
                continue
    return used


def log_findings(service: Service) -> dict[str, Any]:
    """What the service logs tell: errors, warnings, index rebuilds."""
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for log in service.logs.values():
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                levels["unparsed"] += 1
                continue
            levels[str(entry.get("level"))] += 1
            if entry.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                messages[f"{entry.get('level')}: {entry.get('msg')} {entry.get('error', '')}".strip()] += 1
    rebuilds = sum(
        log.read_text(errors="replace").count("real-time index built") for log in service.logs.values()
    )
    return {"levels": dict(levels), "warnings_and_errors": dict(messages), "realtime_index_builds": rebuilds}


# --- HTTP ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Hub:
    """The service as partners see it: every request signed by its partner, with a fresh token."""

    http: httpx.Client
    senders: dict[str, Key]
    case_systems: dict[str, Key]
    refused_503: Counter[str] = field(default_factory=Counter)

    def token(self, partner: str, officer: bool) -> str:
        if officer:
            return bearer(partner, self.case_systems[partner], CASE_SYSTEM_KID, OFFICER)
        return bearer(partner, self.senders[partner], SENDER_KID)

    def request(
        self,
        method: str,
        path: str,
        partner: str,
        *,
        officer: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The request with a fresh token; a 503 (no request slot free, index warming) is retried."""
        for _ in range(RETRIES):
            auth = {"Authorization": f"Bearer {self.token(partner, officer)}"}
            response = self.http.request(method, path, headers={**(headers or {}), **auth}, **kwargs)
            if response.status_code != 503:
                break
            self.refused_503[f"{method} {path.split('/')[2]}"] += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return response

    def get_json(self, path: str, partner: str, *, officer: bool = False, **kwargs: Any) -> dict[str, Any]:
        response = self.request("GET", path, partner, officer=officer, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} as {partner}: HTTP {response.status_code} {response.text[:300]}")
        body: dict[str, Any] = response.json()
        return body


@dataclass(slots=True)
class Sent:
    """One submission as sent: the service's answer, when it came, and (later) its finished job."""

    batch: SubmissionBatch
    status_code: int
    answer: dict[str, Any]
    answered_at: float
    sign_s: float  # client side: serialise and sign
    post_s: float  # the request, token to answer
    job: dict[str, Any] | None = None
    final_status: str | None = None
    matched_at: float | None = None

    @property
    def sender(self) -> str:
        return str(self.batch.payload["sender"])

    @property
    def accepted(self) -> bool:
        return self.status_code in (200, 201)

    @property
    def job_id(self) -> str | None:
        return str(self.answer["job_id"]) if self.accepted and self.answer.get("job_id") else None


def send(hub: Hub, batch: SubmissionBatch) -> Sent:
    sender = str(batch.payload["sender"])
    started = time.perf_counter()
    body = sign_compact(orjson.dumps(batch.payload), hub.senders[sender], kid=SENDER_KID, typ=SUBMISSION_TYP)
    signed = time.perf_counter()
    response = hub.request(
        "POST", "/v1/submissions", sender, content=body.encode(), headers={"Content-Type": "application/jose"}
    )
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        answer = {"detail": response.text[:300]}
    answered = time.perf_counter()
    return Sent(batch, response.status_code, answer, answered, signed - started, answered - signed)


def send_all(hub: Hub, batches: Sequence[SubmissionBatch]) -> list[Sent]:
    sent = []
    for batch in batches:
        outcome = send(hub, batch)
        if not outcome.accepted:
            print(
                f"  refused: {batch.payload['kind']} from {outcome.sender} to {batch.payload.get('recipient')}:"
                f" HTTP {outcome.status_code} {outcome.answer.get('detail') or outcome.answer}",
                flush=True,
            )
        sent.append(outcome)
    return sent


def poll_until(hub: Hub, items: Sequence[Sent], done: Callable[[Hub, Sent], bool], timeout: float) -> float:
    """Poll the items in order until `done` holds for each; returns when the last one was seen done.

    Jobs are claimed oldest first, so only the first item not yet done is asked each pass."""
    pending = [item for item in items if item.job_id is not None]
    deadline = time.monotonic() + timeout
    last_seen = time.perf_counter()
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} not done after {timeout} s; the first: {pending[0].job}")
        while pending and done(hub, pending[0]):
            pending.pop(0)
            last_seen = time.perf_counter()
        if pending:
            time.sleep(POLL_SECONDS)
    return last_seen


def job_finished(hub: Hub, item: Sent) -> bool:
    if item.job is None or item.job["status"] not in FINISHED:
        item.job = hub.get_json(f"/v1/jobs/{item.job_id}", item.sender)
    return str(item.job["status"]) in FINISHED


def list_matched(hub: Hub, item: Sent) -> bool:
    """The health list's submission is matched (its candidates are in), or its job has ended otherwise.

    A list can be matched by another list's job (a matching round) while its own job still waits."""
    if item.matched_at is not None:
        return True
    ended = job_finished(hub, item)
    item.final_status = str(
        hub.get_json(f"/v1/submissions/{item.answer['submission_id']}", item.sender)["status"]
    )
    if item.final_status == "matched" or ended:
        item.matched_at = time.perf_counter()
        return True
    return False


def read_candidates(hub: Hub, la: str) -> tuple[list[dict[str, Any]], int]:
    """Every open candidate of the LA, page by page, as a case officer; and the number of pages."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": PAGE_LIMIT, **({"cursor": cursor} if cursor else {})}
        page = hub.get_json("/v1/cme/candidates", la, officer=True, params=params)
        pages += 1
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items, pages


# --- The run through the service -------------------------------------------------------------------------


@dataclass(slots=True)
class ServiceRun:
    registers: list[Sent]
    health: list[Sent]
    candidates: dict[str, list[dict[str, Any]]]
    pages: int
    skipped: list[str]
    resources: dict[str, dict[str, float]]
    logs: dict[str, Any]
    refused_503: dict[str, int]
    moments: dict[str, float]


def through_service(
    args: argparse.Namespace, batches: Sequence[SubmissionBatch], clock: Stopwatch
) -> ServiceRun:
    with ExitStack() as stack:
        with clock.stage("database (create, migrate, seed demo partners)"):
            url = stack.enter_context(fresh_database())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        with clock.stage("partners and keys"):
            keys, skipped = prepare_partners(url, batches, args.onboard)
        usable = [b for b in batches if str(b.payload["sender"]) in keys[0]]
        with running_service(url, folder, args, clock) as service:
            run = drive(args, usable, service, keys, clock)
            run.resources = resources_used(service)
        run.logs = log_findings(service)
        run.skipped = skipped
        return run


def prepare_partners(
    url: str, batches: Sequence[SubmissionBatch], add_missing: bool
) -> tuple[tuple[dict[str, Key], dict[str, Key]], list[str]]:
    senders = {str(b.payload["sender"]): sender_kind(b) for b in batches}
    unknown = onboard(url, senders, add_missing)
    readers = {str(b.payload["recipient"]) for b in batches if b.payload["kind"] == HEALTH}
    sender_keys = register_keys(url, set(senders) - set(unknown), SENDER_KID)
    case_keys = register_keys(url, readers, CASE_SYSTEM_KID)
    return (sender_keys, case_keys), unknown


def drive(
    args: argparse.Namespace,
    batches: Sequence[SubmissionBatch],
    service: Service,
    keys: tuple[dict[str, Key], dict[str, Key]],
    clock: Stopwatch,
) -> ServiceRun:
    registers = [b for b in batches if b.payload["kind"] != HEALTH]
    health = ordered([b for b in batches if b.payload["kind"] == HEALTH], args.order, args.order_seed)
    with httpx.Client(base_url=f"http://127.0.0.1:{service.port}", timeout=900) as http:
        hub = Hub(http, *keys)
        with clock.stage("registers sent"):
            sent_registers = send_all(hub, registers)
        with clock.stage("register jobs finished (after last register accepted)"):
            poll_until(hub, sent_registers, job_finished, args.timeout)
        moments = {"health_start": time.perf_counter()}
        with clock.stage("health lists sent"):
            sent_health = send_all(hub, health)
        moments["last_health_accepted"] = max((s.answered_at for s in sent_health if s.accepted), default=0.0)
        with clock.stage("every health list matched (after last health list sent)"):
            moments["last_list_matched"] = poll_until(hub, sent_health, list_matched, args.timeout)
        las = sorted({str(s.batch.payload["recipient"]) for s in sent_health if s.accepted})
        with clock.stage("candidates read (every LA, every page)"):
            read = {la: read_candidates(hub, la) for la in las}
        moments["candidates_read"] = time.perf_counter()
        with clock.stage("rest of the health-list jobs finished (after the reads)"):
            moments["last_job_finished"] = poll_until(hub, sent_health, job_finished, args.timeout)
    return ServiceRun(
        registers=sent_registers,
        health=sent_health,
        candidates={la: items for la, (items, _) in read.items()},
        pages=sum(pages for _, pages in read.values()),
        skipped=[],
        resources={},
        logs={},
        refused_503=dict(hub.refused_503),
        moments=moments,
    )


# --- The engine alone ------------------------------------------------------------------------------------


def engine_alone(population: SyntheticPopulation, clock: Stopwatch) -> pl.DataFrame:
    """Every health list at once against every register: frames from the records, then `link`."""
    with clock.stage("engine alone (frames + link, in process)"), gc_paused():
        health = records_to_frame(
            population.health_records,
            list(range(len(population.health_records))),
            registers=population.health_senders,
            las=population.health_recipient_la,
        )
        education = records_to_frame(
            population.education_records,
            list(range(len(population.education_records))),
            registers=population.education_registers,
            las=population.education_la,
        )
        return link(health, education).select("health_id", "outcome", "education_id").sort("health_id")


# --- Agreement -------------------------------------------------------------------------------------------


ContentKey = tuple[str, str, str, str, str]


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def record_key(record: dict[str, Any], la: str) -> ContentKey:
    address = record.get("address") or {}
    return (
        _text(record.get("given_name")), _text(record.get("family_name")), _text(record.get("date_of_birth")),
        _text(address.get("postcode")).upper(), la,
    )  # fmt: skip


def out_of_scope_rows(run: ServiceRun, population: SyntheticPopulation) -> tuple[set[int], set[int]]:
    """Health rows the service refused at intake (receipt: rejected), and rows of lists never accepted."""
    rejected: set[int] = set()
    for item in run.health:
        if item.accepted:
            for fate in item.answer["receipt"]["records"]:
                if fate["fate"] == "rejected":
                    rejected.add(item.batch.rows[fate["record_index"]])
    sent = {row for item in run.health if item.accepted for row in item.batch.rows}
    return rejected, set(range(len(population.health_records))) - sent


@dataclass(slots=True)
class Mapped:
    persons: set[int]
    unmapped: int
    ambiguous: int
    sightings: int


def map_candidates(run: ServiceRun, population: SyntheticPopulation, in_scope: set[int]) -> Mapped:
    """The population children behind the service's candidates, found by content among accepted rows."""
    by_key: dict[ContentKey, set[int]] = {}
    for row in in_scope:
        key = record_key(population.health_records[row], population.health_recipient_la[row])
        by_key.setdefault(key, set()).add(population.health_person_ids[row])
    mapped = Mapped(set(), 0, 0, 0)
    for la, items in run.candidates.items():
        for candidate in items:
            mapped.sightings += int(candidate["sightings"])
            persons = by_key.get(record_key(candidate, la), set())
            mapped.unmapped += not persons
            mapped.ambiguous += len(persons) > 1
            mapped.persons |= persons
    return mapped


def child_scores(flagged: set[int], universe: set[int], unknown: set[int]) -> dict[str, Any]:
    """Per child: precision and recall of "unknown to education" among the children in `universe`."""
    flagged, truly = flagged & universe, unknown & universe
    right = len(flagged & truly)
    return {
        "flagged_children": len(flagged),
        "truly_unknown_children": len(truly),
        "right": right,
        "precision": round(right / len(flagged), 5) if flagged else 1.0,
        "recall": round(right / len(truly), 5) if truly else 1.0,
    }


def who(children: set[int], rows_per_child: Counter[int], unknown: set[int]) -> dict[str, int]:
    """What the children one side alone flags are: truly unknown to education; listed more than once."""
    return {
        "children": len(children),
        "truly_unknown": len(children & unknown),
        "on_several_lists": sum(rows_per_child[child] > 1 for child in children),
    }


def agreement(run: ServiceRun, population: SyntheticPopulation, outcomes: pl.DataFrame) -> dict[str, Any]:
    persons = population.health_person_ids
    rejected, unsent = out_of_scope_rows(run, population)
    in_scope = set(range(len(persons))) - rejected - unsent
    unmatched = set(outcomes.filter(pl.col("outcome") == "unmatched")["health_id"].to_list())
    engine_children = {persons[row] for row in unmatched & in_scope}
    mapped = map_candidates(run, population, in_scope)
    unknown = set(persons) - set(population.education_person_ids)
    universe = {persons[row] for row in in_scope}
    rows_per_child = Counter(persons[row] for row in in_scope)
    service_outcomes = Counter[str]()
    for item in run.health:
        service_outcomes.update(((item.job or {}).get("result") or {}).get("outcomes") or {})
    engine_outcomes = Counter(outcomes.filter(pl.col("health_id").is_in(list(in_scope)))["outcome"].to_list())
    return {
        "health_rows": len(persons),
        "out_of_scope_rows": {
            "rejected_at_intake": len(rejected),
            "lists_not_accepted": len(unsent),
            "engine_unmatched": len(unmatched & (rejected | unsent)),
            "truly_unknown": sum(persons[row] in unknown for row in rejected | unsent),
        },
        "in_scope_rows": len(in_scope),
        "row_outcomes_in_scope": {"engine": dict(engine_outcomes), "service_jobs": dict(service_outcomes)},
        "engine_unmatched_rows": len(unmatched & in_scope),
        "service_candidates": sum(len(items) for items in run.candidates.values()),
        "service_sightings": mapped.sightings,
        "candidates_unmapped": mapped.unmapped,
        "candidates_ambiguous": mapped.ambiguous,
        "children": {
            "engine": len(engine_children),
            "service": len(mapped.persons),
            "both": len(engine_children & mapped.persons),
            "engine_only": len(engine_children - mapped.persons),
            "service_only": len(mapped.persons - engine_children),
        },
        "one_side_only": {
            "engine": who(engine_children - mapped.persons, rows_per_child, unknown),
            "service": who(mapped.persons - engine_children, rows_per_child, unknown),
        },
        "unknown_per_child": {
            "engine_all_rows": child_scores({persons[row] for row in unmatched}, set(persons), unknown),
            "engine_in_scope": child_scores(engine_children, universe, unknown),
            "service_in_scope": child_scores(mapped.persons, universe, unknown),
        },
    }


def engine_report(population: SyntheticPopulation, outcomes: pl.DataFrame) -> ScoreReport:
    return score(
        Truth.from_population(population),
        (LinkOutcome(h, o, e) for h, o, e in outcomes.iter_rows()),
    )


# --- Report ----------------------------------------------------------------------------------------------


def _stamp(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(str(value)) if value else None


def job_line(item: Sent) -> dict[str, Any]:
    """One health list's job, compact: who, how many, outcomes, which round, how long it was queued."""
    job = item.job or {}
    result = job.get("result") or {}
    created, ended = _stamp(job.get("created_at")), _stamp(job.get("finished_at"))
    return {
        "sender": item.sender,
        "la": item.batch.payload.get("recipient"),
        "records": result.get("health_records", len(item.batch.rows)),
        "status": job.get("status"),
        "stage": job.get("stage"),
        "attempts": job.get("attempts"),
        "submission": item.final_status,
        "queued_to_finished_s": round((ended - created).total_seconds(), 2) if created and ended else None,
        "outcomes": result.get("outcomes"),
        "round": str(result.get("round_id") or result.get("run_id") or item.job_id)[:8],
        "replayed": bool(result.get("replayed")),
        "error": job.get("error"),
    }


def round_facts(result: dict[str, Any]) -> dict[str, Any]:
    """A job result's facts about the matching work behind it (a round's, or a single list's run)."""
    return {
        "job": str(result.get("round_job_id") or "")[:8] or None,
        "lists": result.get("round_lists", 1),
        "health_records": result.get("round_health_records", result.get("health_records")),
        "education_records": result.get("education_records"),
        "outcomes": result.get("round_outcomes", result.get("outcomes")),
        "taken_in_period": result.get("round_records_taken_in_period"),
        "seconds": result.get("seconds"),
    }


def rounds(run: ServiceRun) -> dict[str, dict[str, Any]]:
    """The matching work behind the health-list jobs, each counted once: per round (a service matching
    in rounds) or per list's run (one that matches list by list)."""
    found: dict[str, dict[str, Any]] = {}
    for item in run.health:
        result = (item.job or {}).get("result") or {}
        key = str(result.get("round_id") or result.get("run_id") or item.job_id)
        found.setdefault(key, round_facts(result))
    return found


def server_side(run: ServiceRun) -> dict[str, Any]:
    """From the service's own timestamps and job results: last list received -> last job finished, and
    the stage seconds of the matching work summed over rounds (each counted once)."""
    received = [_stamp(s.answer["received_at"]) for s in run.health if s.accepted]
    ended = [_stamp((s.job or {}).get("finished_at")) for s in run.health]
    sums: Counter[str] = Counter()
    for facts in rounds(run).values():
        sums.update({name: float(value) for name, value in (facts.get("seconds") or {}).items()})
    last_received = max((r for r in received if r), default=None)
    last_ended = max((e for e in ended if e), default=None)
    span = (last_ended - last_received).total_seconds() if last_received and last_ended else None
    return {
        "last_received_to_last_job_finished_s": None if span is None else round(span, 2),
        "matching_seconds_summed_over_rounds": {name: round(value, 2) for name, value in sums.items()},
    }


def print_jobs(run: ServiceRun) -> None:
    print(
        "\nhealth-list jobs in sending order: sender -> LA, records, status/stage/submission, queued->finished,"
    )
    print("  matched/possible/unmatched, round (or run) id")
    for item in run.health:
        line = job_line(item)
        outcomes = line["outcomes"] or {}
        print(
            f"  {line['sender']:>9} -> {line['la']} {line['records']:>6} {line['status']}/{line['stage']}/"
            f"{line['submission']} {line['queued_to_finished_s']}s {outcomes.get('matched')}/"
            f"{outcomes.get('possible')}/{outcomes.get('unmatched')} {line['round']}"
            + (" replayed" if line["replayed"] else "")
            + (f" attempts={line['attempts']} error={line['error']}" if line["error"] else "")
        )
    print("\nmatching rounds (each once; job results' own fields, compact):")
    for key, facts in rounds(run).items():
        print(f"  {key[:8]} {json.dumps(facts, separators=(',', ':'))}")


def print_table(summary: dict[str, Any]) -> None:
    print("\nstage times (wall s)")
    for name, seconds in summary["stages"].items():
        print(f"  {name:<58} {seconds:>8.2f}")
    for name, seconds in summary["milestones"].items():
        print(f"  {name:<58} {seconds if seconds is not None else '-':>8}")
    for kind, figures in summary["sending"].items():
        print(f"  sending {kind}: {figures}")
    print("\npeak RSS / CPU of the service's processes")
    for name, used in summary["service_processes"].items():
        print(f"  {name:<20} {used['peak_rss_mib']:>7} MiB  {used['cpu_s']:>8} CPU s")
    agree = summary["agreement"]
    children = agree["children"]
    print("\nagreement (children with a flagged health row in scope)")
    print(f"  engine unmatched rows {agree['engine_unmatched_rows']}, service candidates {agree['service_candidates']}"
          f" (sightings {agree['service_sightings']}, unmapped {agree['candidates_unmapped']},"
          f" ambiguous {agree['candidates_ambiguous']})")  # fmt: skip
    print(f"  children: engine {children['engine']}, service {children['service']}, both {children['both']},"
          f" engine only {children['engine_only']}, service only {children['service_only']}")  # fmt: skip
    print(f"  flagged by one side only: {agree['one_side_only']}")
    print(f"  out of scope: {agree['out_of_scope_rows']}")
    print(f"  row outcomes in scope: {agree['row_outcomes_in_scope']}")
    print(
        f"\n  {'unknown to education, per child':<34} {'flagged':>8} {'truly':>7} {'right':>7} {'precision':>9} {'recall':>8}"
    )
    for name, s in agree["unknown_per_child"].items():
        print(f"  {name:<34} {s['flagged_children']:>8} {s['truly_unknown_children']:>7} {s['right']:>7}"
              f" {s['precision']:>9.5f} {s['recall']:>8.5f}")  # fmt: skip


def milestones(run: ServiceRun) -> dict[str, float | None]:
    moments = run.moments
    last = moments["last_health_accepted"]
    return {
        "first health list sent -> last accepted": round(last - moments["health_start"], 2),
        "last health list accepted -> every list matched": round(moments["last_list_matched"] - last, 2),
        "last health list accepted -> every candidate readable": round(moments["candidates_read"] - last, 2),
        "last health list accepted -> every job finished": round(moments["last_job_finished"] - last, 2),
        "server: last list received -> last job finished": server_side(run)[
            "last_received_to_last_job_finished_s"
        ],
    }


def sending(items: Sequence[Sent]) -> dict[str, Any]:
    """How the sends went: records, client signing seconds, request seconds (sum, p50, max), records/s."""
    posts = sorted(item.post_s for item in items)
    records = sum(len(item.batch.rows) for item in items)
    total = sum(posts)
    return {
        "submissions": len(items),
        "records": records,
        "sign_s": round(sum(item.sign_s for item in items), 2),
        "post_s": round(total, 2),
        "post_p50_ms": round(posts[len(posts) // 2] * 1000, 1) if posts else None,
        "post_max_s": round(posts[-1], 2) if posts else None,
        "records_per_post_s": round(records / total) if total else None,
    }


def source_state() -> str:
    """The commit the service ran from, and whether app/ had changes not committed."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--", "app", "migrations")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in app/" if dirty else "")


def summarise(
    args: argparse.Namespace,
    population: SyntheticPopulation,
    run: ServiceRun,
    clock: Stopwatch,
    agree: dict[str, Any],
) -> dict[str, Any]:
    return {
        "service_source": args.source,
        "children": args.children,
        "seed": args.seed,
        "variant": args.variant,
        "order": args.order,
        "separate_worker": args.separate_worker,
        "server_workers": args.server_workers,
        "health_rows": len(population.health_records),
        "education_rows": len(population.education_records),
        "submissions": {
            "registers": len(run.registers),
            "registers_accepted": sum(s.accepted for s in run.registers),
            "health_lists": len(run.health),
            "health_accepted": sum(s.accepted for s in run.health),
            "senders_skipped_unknown": len(run.skipped),
            "health_final_status": dict(Counter(s.final_status for s in run.health if s.accepted)),
            "register_jobs": dict(Counter((s.job or {}).get("status") for s in run.registers if s.accepted)),
            "health_jobs": dict(Counter((s.job or {}).get("status") for s in run.health if s.accepted)),
        },
        "sending": {"registers": sending(run.registers), "health_lists": sending(run.health)},
        "candidate_pages": run.pages,
        "stages": clock.stages,
        "milestones": milestones(run),
        "matching_rounds": len(rounds(run)),
        "matching_seconds_summed_over_rounds": server_side(run)["matching_seconds_summed_over_rounds"],
        "service_processes": run.resources,
        "bench_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "http_503_retries": run.refused_503,
        "service_logs": run.logs,
        "agreement": agree,
    }


# --- Main ------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        help="a named generator variant (decision 0013); held-out ones are only to be scored",
    )
    parser.add_argument("--order", choices=("given", "shuffled"), default="given", help="of the health lists")
    parser.add_argument("--order-seed", type=int, default=None, help="for --order shuffled (default: --seed)")
    parser.add_argument(
        "--separate-worker", action="store_true", help="cme serve without its worker + cme worker"
    )
    parser.add_argument("--server-workers", type=int, default=1, help="cme serve --workers")
    parser.add_argument(
        "--onboard", action=argparse.BooleanOptionalAction, default=True,
        help="add senders missing from the demo registry (synthetic GP practices, independent schools)",
    )  # fmt: skip
    parser.add_argument(
        "--round-wait", type=float, help="CME_MATCH_ROUND_WAIT_SECONDS for the service (default: its own)"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for jobs, per phase")
    parser.add_argument("--out", type=Path, help="also write the summary and every job result here (JSON)")
    args = parser.parse_args()
    if args.order_seed is None:
        args.order_seed = args.seed
    return args


def main() -> None:
    args = parse_args()
    args.source = source_state()  # what the server will run: app/ as it is now
    clock = Stopwatch()
    started = time.perf_counter()
    population, batches = build_submissions(args.children, args.seed, clock, args.variant)
    print(f"{len(population.health_records)} health rows, {len(population.education_records)} education rows,"
          f" {len(batches)} submissions", flush=True)  # fmt: skip
    run = through_service(args, batches, clock)
    for partner in run.skipped:
        print(f"  skipped: {partner} is not in the partner registry (--no-onboard)")
    outcomes = engine_alone(population, clock)
    agree = agreement(run, population, outcomes)
    clock.stages["total"] = round(time.perf_counter() - started, 2)
    summary = summarise(args, population, run, clock, agree)
    print_jobs(run)
    print("\nengine alone, every health row (app.synthetic.scoring):")
    print(engine_report(population, outcomes))
    print_table(summary)
    if args.out is not None:
        jobs = [job_line(s) for s in run.health] + [
            {"register": s.sender, **(s.job or {})} for s in run.registers
        ]
        args.out.write_text(json.dumps({"summary": summary, "jobs": jobs}, indent=1, default=str))
    print(json.dumps(summary, default=str), flush=True)


if __name__ == "__main__":
    main()
