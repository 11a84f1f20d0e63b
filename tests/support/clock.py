"""A clock tests can freeze and move (install with `app.state.clock = FrozenClock(...)`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass
class FrozenClock:
    current: dt.datetime

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)
