"""Every comparison rule of the matching engine, written once (decision 0022).

A pair of canonical records is compared field by field; a field's level is the first of its conditions
that holds (best level first, "missing" before all). The conditions are written here once, as expressions
over the two records' canonical columns (`Q.given1`, `R.pref_family`) built from a few primitives: equal,
null, a string measure of a query column against a reference column (Jaro-Winkler, optimal string
alignment distance, token-set similarity, prefix), list membership, overlap and emptiness, a string's
length, two dates a day apart, how many of some conditions hold. Two interpreters read the same rules:

- `Node.polars()`: a polars expression over a frame of pairs holding each column as q_<name>/r_<name>
  and each measure as a column named `Measure.name`. `compare.compare` evaluates these for millions of
  pairs, having computed every measure column-wise, once per distinct pair of strings.
- `Node.source()`: Python source over two canonical record dicts `q` and `r`, compiled once into
  `compare_levels`. `single.compare_pair` runs it for one pair in microseconds (polars costs ~100 ms for a
  one-row frame). `and`, `or` and conditional expressions short-circuit, so a measure is only computed
  where a rule reaches it, as in the hand-written scalar code this replaces.

Every primitive's two implementations are tested against each other (tests/matching/test_rules.py), and
the two interpreters on many random and adversarial pairs; a rule itself exists only here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any, cast

import numpy as np
import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from app.matching.params import FIELD_LEVELS, level_code

FUZZY_HIGH = 0.92
FUZZY_LOW = 0.85
STREET_SIMILAR = 0.85


# --- The primitives' Python implementations ---------------------------------------------------------------
# What `source()` calls. Similarities are rounded to float32, as the batch path computes them (rapidfuzz's
# cpdist into float32 arrays), so thresholds cut identically.


def _eq(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a == b


def _jaro_winkler(a: str | None, b: str | None) -> float:
    if a is None or b is None:
        return 0.0
    return 1.0 if a == b else float(np.float32(JaroWinkler.normalized_similarity(a, b)))


def _osa(a: str | None, b: str | None) -> float:
    if a is None or b is None:
        return 99.0
    return 0.0 if a == b else float(OSA.distance(a, b))


def _token_set(a: str | None, b: str | None) -> float:
    if a is None or b is None:
        return 0.0
    return 1.0 if a == b else float(np.float32(fuzz.token_set_ratio(a, b)) / np.float32(100.0))


def _prefix(a: str | None, b: str | None) -> bool:
    if a is None or b is None or min(len(a), len(b)) < 3:
        return False
    return a.startswith(b) or b.startswith(a)


def _length(value: str | None) -> int:
    return 0 if value is None else len(value)


def _contains(values: Sequence[str] | None, value: str | None) -> bool:
    return value is not None and values is not None and value in values


def _overlaps(a: Sequence[str] | None, b: Sequence[str] | None) -> bool:
    return bool(a and b and not set(a).isdisjoint(b))


def _one_day(a: dt.date | None, b: dt.date | None) -> bool:
    return a is not None and b is not None and abs((a - b).days) == 1


def _joined(tokens: Sequence[str] | None) -> str:
    return "".join(tokens or ())


_UNSET = object()
_HELPERS: dict[str, Any] = {
    f.__name__: f
    for f in (
        _eq,
        _jaro_winkler,
        _osa,
        _token_set,
        _prefix,
        _length,
        _contains,
        _overlaps,
        _one_day,
        _joined,
    )
}


# --- Expressions ------------------------------------------------------------------------------------------

# Columns derived for comparison only, per record, which canonical records do not hold: (polars over a
# canonical frame, Python source over a record dict named {side}). The given name's tokens run together:
# Mary Ann against Maryann.
DERIVED: dict[str, tuple[Callable[[], pl.Expr], str]] = {
    "given_key": (lambda: pl.col("given_tokens").list.join(""), "_joined({side}['given_tokens'])"),
}


class Node:
    """An expression over a pair: one polars form (over the pairs frame) and one Python form (over q, r)."""

    def polars(self) -> pl.Expr:
        raise NotImplementedError

    def source(self) -> str:
        raise NotImplementedError

    def children(self) -> Sequence[Node]:
        return ()

    def measures(self) -> Iterator[Measure]:
        """Every measure this expression reads (a measure is a column the batch path computes first)."""
        for child in self.children():
            yield from child.measures()

    def __or__(self, other: Node) -> Node:
        return AnyOf(self, other)

    def __and__(self, other: Node) -> Node:
        return AllOf(self, other)

    def __invert__(self) -> Node:
        return Not(self)


@dataclass(frozen=True, eq=False)
class Col(Node):
    """A canonical column of the query (side "q") or the reference (side "r") record."""

    side: str
    name: str

    def polars(self) -> pl.Expr:
        return pl.col(f"{self.side}_{self.name}")

    def source(self) -> str:
        derived = DERIVED.get(self.name)
        return derived[1].format(side=self.side) if derived else f"{self.side}[{self.name!r}]"

    @property
    def null(self) -> Node:
        return IsNull(self)

    def __eq__(self, other: object) -> Node:  # type: ignore[override]
        # Both known and equal: a missing value agrees with nothing.
        assert isinstance(other, Col)
        return Eq(self, other)

    def __hash__(self) -> int:
        return hash((self.side, self.name))


class _Side:
    """`Q.given1` is the query's given1 column, `R.given1` the reference's."""

    def __init__(self, side: str) -> None:
        self._side = side

    def __getattr__(self, name: str) -> Col:
        return Col(self._side, name)


Q = _Side("q")
R = _Side("r")


@dataclass(frozen=True, eq=False)
class IsNull(Node):
    column: Col

    def polars(self) -> pl.Expr:
        return self.column.polars().is_null()

    def source(self) -> str:
        return f"({self.column.source()} is None)"


@dataclass(frozen=True, eq=False)
class Eq(Node):
    a: Col
    b: Col

    def polars(self) -> pl.Expr:
        return (self.a.polars() == self.b.polars()).fill_null(False)

    def source(self) -> str:
        a, b = self.a.source(), self.b.source()
        if self.a.name in DERIVED:
            return f"_eq({a}, {b})"
        # A column read twice costs less than a call (the comparison runs tens of times per pair).
        return f"({a} is not None and {a} == {b})"


@dataclass(frozen=True, eq=False)
class Const(Node):
    """A level code."""

    value: int

    def polars(self) -> pl.Expr:
        return pl.lit(self.value, pl.Int8)

    def source(self) -> str:
        return repr(self.value)


@dataclass(frozen=True, eq=False)
class Out(Node):
    """An output of an earlier stage (a field's straight level, read by the crosswise-name rule)."""

    name: str

    def polars(self) -> pl.Expr:
        return pl.col(self.name)

    def source(self) -> str:
        return f"_out_{self.name}"


@dataclass(frozen=True, eq=False, init=False)
class AnyOf(Node):
    parts: tuple[Node, ...]

    def __init__(self, *parts: Node) -> None:
        # (a | b) | c is one disjunction: flatter Python, the same polars.
        flat = [p for part in parts for p in (part.parts if isinstance(part, AnyOf) else (part,))]
        object.__setattr__(self, "parts", tuple(flat))

    def children(self) -> Sequence[Node]:
        return self.parts

    def polars(self) -> pl.Expr:
        return reduce(lambda a, b: a | b, (p.polars() for p in self.parts))

    def source(self) -> str:
        return "(" + " or ".join(p.source() for p in self.parts) + ")"


@dataclass(frozen=True, eq=False, init=False)
class AllOf(Node):
    parts: tuple[Node, ...]

    def __init__(self, *parts: Node) -> None:
        flat = [p for part in parts for p in (part.parts if isinstance(part, AllOf) else (part,))]
        object.__setattr__(self, "parts", tuple(flat))

    def children(self) -> Sequence[Node]:
        return self.parts

    def polars(self) -> pl.Expr:
        return reduce(lambda a, b: a & b, (p.polars() for p in self.parts))

    def source(self) -> str:
        return "(" + " and ".join(p.source() for p in self.parts) + ")"


@dataclass(frozen=True, eq=False)
class Not(Node):
    part: Node

    def children(self) -> Sequence[Node]:
        return (self.part,)

    def polars(self) -> pl.Expr:
        return ~self.part.polars()

    def source(self) -> str:
        return f"(not {self.part.source()})"


@dataclass(frozen=True, eq=False)
class CountIs(Node):
    """Exactly `count` of the conditions hold."""

    count: int
    parts: tuple[Node, ...]

    def children(self) -> Sequence[Node]:
        return self.parts

    def polars(self) -> pl.Expr:
        total = reduce(lambda a, b: a + b, (p.polars().cast(pl.Int8) for p in self.parts))
        return total == self.count

    def source(self) -> str:
        return "(sum((" + ", ".join(p.source() for p in self.parts) + f",)) == {self.count})"


@dataclass(frozen=True, eq=False)
class OneDayApart(Node):
    a: Col
    b: Col

    def polars(self) -> pl.Expr:
        return ((self.a.polars() - self.b.polars()).dt.total_days().abs() == 1).fill_null(False)

    def source(self) -> str:
        return f"_one_day({self.a.source()}, {self.b.source()})"


@dataclass(frozen=True, eq=False)
class Compared(Node):
    """A numeric measure against a threshold: `op` is ">=" or "<="."""

    value: Node
    op: str
    bound: float

    def children(self) -> Sequence[Node]:
        return (self.value,)

    def polars(self) -> pl.Expr:
        column = self.value.polars()
        return column >= self.bound if self.op == ">=" else column <= self.bound

    def source(self) -> str:
        return f"({self.value.source()} {self.op} {self.bound!r})"


@dataclass(frozen=True, eq=False)
class Measure(Node):
    """A value computed from a query column and a reference column (or one column), which the batch path
    computes as a column of its own before evaluating the rules. `kind` names the primitive:

    - "jaro_winkler", "token_set": similarity in [0, 1], 1 when equal, 0 when either is null;
    - "osa": optimal-string-alignment distance (one typo or one transposition is 1), 99 when either is null;
    - "prefix": one string starts the other, the shorter at least three characters long;
    - "length": characters in `a` (0 when null);
    - "contains": list `a` holds value `b`; "overlaps": lists `a` and `b` share an element;
      "empty": list `a` has no element.
    """

    kind: str
    a: Col
    b: Col | None = None

    @property
    def name(self) -> str:
        other = "" if self.b is None else f",{self.b.side}.{self.b.name}"
        return f"{self.kind}({self.a.side}.{self.a.name}{other})"

    def measures(self) -> Iterator[Measure]:
        yield self

    def polars(self) -> pl.Expr:
        return pl.col(self.name)

    @property
    def local(self) -> str:
        """The compiled function's local holding this measure once computed (several rules read one)."""
        return "_m_" + re.sub(r"\W", "_", self.name)

    def source(self) -> str:
        if self.kind == "empty":
            return f"(not {self.a.source()})"
        args = ", ".join(c.source() for c in (self.a, self.b) if c is not None)
        # Computed where a rule first reaches it, then read back.
        return f"({self.local} if {self.local} is not _UNSET else ({self.local} := _{self.kind}({args})))"

    def __ge__(self, bound: float) -> Node:
        return Compared(self, ">=", bound)

    def __le__(self, bound: float) -> Node:
        return Compared(self, "<=", bound)


_STRING_MEASURES = frozenset({"jaro_winkler", "osa", "token_set", "prefix"})


def jaro_winkler(a: Col, b: Col) -> Measure:
    return Measure("jaro_winkler", a, b)


def osa(a: Col, b: Col) -> Measure:
    return Measure("osa", a, b)


def token_set(a: Col, b: Col) -> Measure:
    return Measure("token_set", a, b)


def prefix(a: Col, b: Col) -> Node:
    """A name cut short (Gwil, Cat, Dafy): one is a prefix of the other, at least three letters long."""
    return Measure("prefix", a, b)


def length(a: Col) -> Measure:
    return Measure("length", a)


def contains(values: Col, value: Col) -> Node:
    return Measure("contains", values, value)


def overlaps(a: Col, b: Col) -> Node:
    return Measure("overlaps", a, b)


def empty(values: Col) -> Node:
    return Measure("empty", values)


def one_typo(a: Col, b: Col) -> Node:
    """At most one edit (a slip, a transposition), on a name of at least three letters (the length first:
    it is the cheaper test)."""
    return (length(a) >= 3) & (osa(a, b) <= 1)


@dataclass(frozen=True, eq=False)
class Choice(Node):
    """The value of the first condition that holds, else `otherwise`: a field's levels, best first."""

    cases: tuple[tuple[Node, Node], ...]
    otherwise: Node

    def children(self) -> Sequence[Node]:
        return (*(n for case in self.cases for n in case), self.otherwise)

    def polars(self) -> pl.Expr:
        (first, then), *rest = self.cases
        chain: Any = pl.when(first.polars()).then(then.polars())
        for condition, value in rest:
            chain = chain.when(condition.polars()).then(value.polars())
        result: pl.Expr = chain.otherwise(self.otherwise.polars())
        return result

    def source(self) -> str:
        chain = " else ".join(f"{v.source()} if {c.source()}" for c, v in self.cases)
        return f"({chain} else {self.otherwise.source()})"


def levels(field: str, missing: Node, conditions: Sequence[tuple[str, Node]]) -> Node:
    """A field's level: 0 where `missing`, else the first level whose condition holds, else the worst."""
    cases = [(missing, Const(0)), *((c, Const(level_code(field, level))) for level, c in conditions)]
    return Choice(tuple(cases), Const(level_code(field, FIELD_LEVELS[field][-1])))


# --- The rules --------------------------------------------------------------------------------------------

_Q_GROUPS = (Q.given_c1, Q.given_c2, Q.pref_c1, Q.pref_c2)
_R_GROUPS = (R.given_c1, R.given_c2, R.pref_c1, R.pref_c2)
# A name moved between the given and the middle slots, on either side.
_GIVEN_MOVED = (
    contains(R.given_alt, Q.given1) | contains(Q.given_alt, R.given1) | contains(Q.given_alt, R.pref_given1)
)

GIVEN = levels(
    "given",
    Q.given1.null | (R.given1.null & R.pref_given1.null),
    [
        ("exact", (Q.given1 == R.given1) | (Q.given1 == R.pref_given1) | (Q.given_key == R.given_key)),
        ("equivalent", AnyOf(*(a == b for a in _Q_GROUPS for b in _R_GROUPS))),
        ("alternative", _GIVEN_MOVED),
        (
            "fuzzy_high",
            one_typo(Q.given1, R.given1)
            | one_typo(Q.given1, R.pref_given1)
            | prefix(Q.given1, R.given1)
            | prefix(Q.given1, R.pref_given1),
        ),
        (
            "fuzzy_low",
            (jaro_winkler(Q.given1, R.given1) >= FUZZY_LOW)
            | (jaro_winkler(Q.given1, R.pref_given1) >= FUZZY_LOW)
            | (Q.given_ph == R.given_ph),
        ),
    ],
)

FAMILY = levels(
    "family",
    Q.family.null | R.family.null,
    [
        ("exact", (Q.family == R.family) | (Q.family == R.pref_family)),
        ("partial", overlaps(Q.family_tokens, R.family_tokens)),
        (
            "former",
            contains(R.former_family, Q.family)
            | contains(Q.former_family, R.family)
            | contains(Q.former_family, R.pref_family),
        ),
        (
            "fuzzy_high",
            (jaro_winkler(Q.family, R.family) >= FUZZY_HIGH)
            | (jaro_winkler(Q.family, R.pref_family) >= FUZZY_HIGH)
            | one_typo(Q.family, R.family),
        ),
        (
            "fuzzy_low",
            (jaro_winkler(Q.family, R.family) >= FUZZY_LOW)
            | (jaro_winkler(Q.family, R.pref_family) >= FUZZY_LOW)
            | (Q.family_ph == R.family_ph),
        ),
    ],
)

DOB = levels(
    "dob",
    Q.dob.null | R.dob.null,
    [
        ("exact", Q.dob == R.dob),
        ("transposed", (Q.dob_y == R.dob_y) & (Q.dob_d == R.dob_m) & (Q.dob_m == R.dob_d)),
        ("one_day", OneDayApart(Q.dob, R.dob)),
        ("two_of_three", CountIs(2, (Q.dob_y == R.dob_y, Q.dob_m == R.dob_m, Q.dob_d == R.dob_d))),
    ],
)

_HOUSE_SAME = Q.house_no == R.house_no
_HOUSE_UNKNOWN = Q.house_no.null | R.house_no.null
_NO_NUMBERS = Q.house_no.null & R.house_no.null
_STREET_SAME = token_set(Q.street, R.street) >= STREET_SIMILAR
_POSTCODE_SAME = Q.postcode == R.postcode
_POSTCODE_MISSING = Q.postcode.null | R.postcode.null
# The same dwelling by its lines: house number and street, or (no numbers on either side) the house name and
# street, which the street key holds; and the postcodes, where both are known, no more than one slip apart.
# Number and street names repeat from town to town (1 Valley Street, Tonypandy and 1 Valley Close, Harlech):
# with two unrelated postcodes the lines agreeing is a coincidence.
_DWELLING_SAME = (
    _STREET_SAME & (_HOUSE_SAME | _NO_NUMBERS) & (_POSTCODE_MISSING | (osa(Q.postcode, R.postcode) <= 1))
)
# Lines that say "another dwelling": another street, or another number in it.
_LINES_DIFFER = ~Q.street.null & ~R.street.null & (~_STREET_SAME | (~_HOUSE_UNKNOWN & ~_HOUSE_SAME))

ADDRESS = levels(
    "address",
    (Q.postcode.null & Q.street.null)
    | (R.postcode.null & R.street.null)
    # Without a postcode on one side, the postcode levels cannot be judged: a postcode missing is not a
    # postcode that differs. The lines alone then decide (same dwelling, another dwelling, or unknown).
    | (_POSTCODE_MISSING & ~_DWELLING_SAME & ~_LINES_DIFFER),
    [
        ("postcode_and_house", _POSTCODE_SAME & (_HOUSE_SAME | (_HOUSE_UNKNOWN & _STREET_SAME))),
        ("postcode", _POSTCODE_SAME),
        ("house_and_street", _DWELLING_SAME),
        ("sector", Q.pc_sector == R.pc_sector),
        ("district", Q.pc_district == R.pc_district),
        ("area", Q.pc_area == R.pc_area),
    ],
)

# Middle names: agree or disagree when both sides have given-type names beyond the first; "one_sided" when
# only the query has any (a list that drops them, or another child); missing when the query has none. A
# middle name that moved into the given-name slot on one side explains the other side's lack of one.
MIDDLE = levels(
    "middle",
    empty(Q.given_alt) | (_GIVEN_MOVED & empty(R.given_alt)),
    [
        ("agree", overlaps(Q.given_alt, R.given_alt)),
        ("disagree", ~empty(Q.given_alt) & ~empty(R.given_alt)),
    ],
)

SEX = levels("sex", Q.sex.null | R.sex.null, [("agree", Q.sex == R.sex)])
NHS = levels("nhs", Q.nhs.null | R.nhs.null, [("agree", Q.nhs == R.nhs)])

# Given and family written the other way round on one side: each name agrees with the other's opposite
# part, exactly, as a token of it, or nearly.
_SWAP_GIVEN_EXACT = (Q.given1 == R.family) | contains(R.family_tokens, Q.given1)
_SWAP_FAMILY_EXACT = (Q.family == R.given1) | contains(Q.family_tokens, R.given1)

# Outputs computed from the two records, in order. Stage one: each field's straight level and the facts the
# crosswise reading and the scorers need.
STRAIGHT: dict[str, Node] = {
    "given": GIVEN,
    "family": FAMILY,
    "dob": DOB,
    "address": ADDRESS,
    "middle": MIDDLE,
    "sex": SEX,
    "nhs": NHS,
    # The surnames' near agreement is one keying slip (see `score.SLIP_ONLY`).
    "family_slip": one_typo(Q.family, R.family),
    "given_registered_same": Q.given1 == R.given1,
    "swap": (_SWAP_GIVEN_EXACT | one_typo(Q.given1, R.family))
    & (_SWAP_FAMILY_EXACT | one_typo(Q.family, R.given1)),
    "swap_given_exact": _SWAP_GIVEN_EXACT,
    "swap_family_exact": _SWAP_FAMILY_EXACT,
}
# Stage one's helpers, not outputs of a comparison.
SWAP_FACTS = ("swap", "swap_given_exact", "swap_family_exact")

# Stage two: names written the other way round replace the straight levels when they explain the pair
# better (the straight reading is fuzzy_low or worse on either name). A swapped pair has no given-name,
# surname or full-name frequency: the values a term-frequency adjustment would read are not the query's.
_POOR = level_code("given", "fuzzy_low")
NAMES_SWAPPED = Out("swap") & ((Compared(Out("given"), ">=", _POOR)) | Compared(Out("family"), ">=", _POOR))
CROSSWISE: dict[str, Node] = {
    "given": Choice(
        (
            (NAMES_SWAPPED & Out("swap_given_exact"), Const(level_code("given", "exact"))),
            (NAMES_SWAPPED, Const(level_code("given", "fuzzy_high"))),
        ),
        Out("given"),
    ),
    "family": Choice(
        (
            (NAMES_SWAPPED & Out("swap_family_exact"), Const(level_code("family", "exact"))),
            (NAMES_SWAPPED, Const(level_code("family", "fuzzy_high"))),
        ),
        Out("family"),
    ),
    "names_swapped": NAMES_SWAPPED,
}
SWAP_CLEARS = ("tf_given_value", "tf_family_value")


def measures() -> dict[str, Measure]:
    """Every measure the rules read, by name (each computed once however many rules read it)."""
    found: dict[str, Measure] = {}
    for node in (*STRAIGHT.values(), *CROSSWISE.values()):
        for measure in node.measures():
            if measure.kind in _STRING_MEASURES:
                # Batch computes a string measure of coded query and reference columns, in that order.
                assert measure.a.side == "q" and measure.b is not None and measure.b.side == "r", measure
            found.setdefault(measure.name, measure)
    return found


def _compile() -> Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]:
    """The rules as one Python function of (q, r): stage one's outputs as locals, then stage two's."""
    lines = ["def compare_levels(q, r):"]
    lines += [f"    {m.local} = _UNSET" for m in measures().values() if m.kind != "empty"]
    lines += [f"    _out_{name} = {node.source()}" for name, node in STRAIGHT.items()]
    lines += [f"    _final_{name} = {node.source()}" for name, node in CROSSWISE.items()]
    outputs = [name for name in STRAIGHT if name not in SWAP_FACTS]
    returned = [
        f"{name!r}: _final_{name}" if name in CROSSWISE else f"{name!r}: _out_{name}" for name in outputs
    ]
    returned += [f"{name!r}: _final_{name}" for name in CROSSWISE if name not in STRAIGHT]
    lines.append("    return {" + ", ".join(returned) + "}")
    namespace = {**_HELPERS, "_UNSET": _UNSET}
    # Source built from the rules above only, never from data.
    exec(compile("\n".join(lines), "<app.matching.rules>", "exec"), namespace)
    return cast(Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]], namespace["compare_levels"])


# (q, r) canonical record dicts (with the `DERIVED` columns) -> given, family, dob, address, middle, sex,
# nhs, family_slip, given_registered_same, names_swapped: what `compare.compare` gives each pair.
compare_levels = _compile()
