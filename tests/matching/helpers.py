"""Hand-built records for matching tests, plus a seeded background of unrelated children."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import polars as pl

from app.matching.frames import records_to_frame

_GIVEN = (
    "Alys",
    "Bethan",
    "Cai",
    "Elin",
    "Gethin",
    "Iolo",
    "Lowri",
    "Macsen",
    "Nia",
    "Osian",
    "Seren",
    "Tomos",
)
_FAMILY = (
    "Bowen",
    "Davies",
    "Edwards",
    "Griffiths",
    "Hughes",
    "Lewis",
    "Morgan",
    "Powell",
    "Price",
    "Thomas",
)
_STREETS = ("Heol y Felin", "Station Road", "Ffordd yr Eglwys", "Church Street", "Maes y Coed")
_POSTCODES = ("CF14 3AB", "SA1 6PL", "LL55 4RD", "NP20 5QT", "LD1 5DT", "CF83 2XY", "SA31 1HN")


def child(
    given: str | None,
    family: str | None,
    dob: str | None,
    postcode: str | None = "CF10 1AA",
    line: str | None = "12 Heol y Bont",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {"given_name": given, "family_name": family, "date_of_birth": dob}
    if postcode is not None or line is not None:
        record["address"] = {"lines": [line] if line else [], "postcode": postcode, "town": "Caerdydd"}
    record.update(extra)
    return record


def background(count: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = dt.date(2008, 9, 1)
    return [
        child(
            rng.choice(_GIVEN),
            rng.choice(_FAMILY),
            (start + dt.timedelta(days=rng.randrange(4000))).isoformat(),
            rng.choice(_POSTCODES),
            f"{rng.randrange(1, 200)} {rng.choice(_STREETS)}",
            sex=rng.choice("FM"),
        )
        for _ in range(count)
    ]


BACKGROUND_IDS_FROM = 10_000


def frames(
    health: list[dict[str, Any]], education: list[dict[str, Any]], noise: int = 300
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Health ids are 1..n; education ids 101..; background education records from 10,000."""
    extra = background(noise)
    health_frame = records_to_frame(health, list(range(1, len(health) + 1)))
    education_frame = records_to_frame(
        education + extra,
        [101 + i for i in range(len(education))] + [BACKGROUND_IDS_FROM + i for i in range(len(extra))],
    )
    return health_frame, education_frame
