"""Places for the synthetic population: LAs, towns with their postcode districts, streets, schools.

LA codes, names and pilot flags come from the project's reference file; towns and postcode districts
are real place names paired with plausible districts, and every postcode unit and street allocation is
invented, so a generated address never points at a real household.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

_REFERENCE = Path(__file__).resolve().parent.parent / "core" / "reference" / "wales-reference.json"

# Town (English form, Welsh form or None) and postcode districts, per LA register code.
TOWNS: dict[str, tuple[tuple[str, str | None, tuple[str, ...]], ...]] = {
    "AGY": (
        ("Holyhead", "Caergybi", ("LL65",)),
        ("Llangefni", None, ("LL77",)),
        ("Amlwch", None, ("LL68",)),
        ("Menai Bridge", "Porthaethwy", ("LL59",)),
        ("Beaumaris", "Biwmares", ("LL58",)),
    ),
    "GWN": (
        ("Caernarfon", None, ("LL55",)),
        ("Bangor", None, ("LL57",)),
        ("Pwllheli", None, ("LL53",)),
        ("Porthmadog", None, ("LL49",)),
        ("Dolgellau", None, ("LL40",)),
        ("Bala", "Y Bala", ("LL23",)),
        ("Blaenau Ffestiniog", None, ("LL41",)),
    ),
    "CWY": (
        ("Llandudno", None, ("LL30",)),
        ("Colwyn Bay", "Bae Colwyn", ("LL29",)),
        ("Conwy", None, ("LL32",)),
        ("Abergele", None, ("LL22",)),
    ),
    "DEN": (
        ("Rhyl", "Y Rhyl", ("LL18",)),
        ("Denbigh", "Dinbych", ("LL16",)),
        ("Ruthin", "Rhuthun", ("LL15",)),
        ("Prestatyn", None, ("LL19",)),
    ),
    "FLN": (
        ("Mold", "Yr Wyddgrug", ("CH7",)),
        ("Flint", "Y Fflint", ("CH6",)),
        ("Connah's Quay", None, ("CH5",)),
        ("Holywell", "Treffynnon", ("CH8",)),
    ),
    "WRX": (("Wrexham", "Wrecsam", ("LL11", "LL12", "LL13")), ("Chirk", "Y Waun", ("LL14",))),
    "CGN": (
        ("Aberystwyth", None, ("SY23",)),
        ("Cardigan", "Aberteifi", ("SA43",)),
        ("Lampeter", "Llanbedr Pont Steffan", ("SA48",)),
        ("Aberaeron", None, ("SA46",)),
    ),
    "PEM": (
        ("Haverfordwest", "Hwlffordd", ("SA61", "SA62")),
        ("Pembroke", "Penfro", ("SA71",)),
        ("Milford Haven", "Aberdaugleddau", ("SA73",)),
        ("Tenby", "Dinbych-y-pysgod", ("SA70",)),
        ("Fishguard", "Abergwaun", ("SA65",)),
    ),
    "CMN": (
        ("Llanelli", None, ("SA14", "SA15")),
        ("Carmarthen", "Caerfyrddin", ("SA31", "SA33")),
        ("Ammanford", "Rhydaman", ("SA18",)),
        ("Burry Port", "Porth Tywyn", ("SA16",)),
        ("Llandeilo", None, ("SA19",)),
        ("Newcastle Emlyn", "Castellnewydd Emlyn", ("SA38",)),
    ),
    "SWA": (("Swansea", "Abertawe", ("SA1", "SA2", "SA5", "SA6")), ("Gorseinon", None, ("SA4",))),
    "NTL": (("Neath", "Castell-nedd", ("SA10", "SA11")), ("Port Talbot", None, ("SA12", "SA13"))),
    "BGE": (
        ("Bridgend", "Pen-y-bont ar Ogwr", ("CF31", "CF35")),
        ("Maesteg", None, ("CF34",)),
        ("Porthcawl", None, ("CF36",)),
    ),
    "VGL": (
        ("Barry", "Y Barri", ("CF62", "CF63")),
        ("Penarth", None, ("CF64",)),
        ("Cowbridge", "Y Bont-faen", ("CF71",)),
    ),
    "CRF": (("Cardiff", "Caerdydd", ("CF3", "CF5", "CF10", "CF11", "CF14", "CF23", "CF24")),),
    "RCT": (
        ("Pontypridd", None, ("CF37",)),
        ("Aberdare", "Aberdâr", ("CF44",)),
        ("Tonypandy", None, ("CF40",)),
        ("Porth", None, ("CF39",)),
        ("Llantrisant", None, ("CF72",)),
        ("Treorchy", "Treorci", ("CF42",)),
        ("Mountain Ash", "Aberpennar", ("CF45",)),
    ),
    "CAY": (
        ("Caerphilly", "Caerffili", ("CF83",)),
        ("Blackwood", "Coed-duon", ("NP12",)),
        ("Bargoed", None, ("CF81",)),
        ("Ystrad Mynach", None, ("CF82",)),
    ),
    "BGW": (
        ("Ebbw Vale", "Glynebwy", ("NP23",)),
        ("Tredegar", None, ("NP22",)),
        ("Abertillery", "Abertyleri", ("NP13",)),
    ),
    "TOF": (("Cwmbran", "Cwmbrân", ("NP44",)), ("Pontypool", "Pont-y-pŵl", ("NP4",))),
    "MON": (
        ("Abergavenny", "Y Fenni", ("NP7",)),
        ("Monmouth", "Trefynwy", ("NP25",)),
        ("Chepstow", "Cas-gwent", ("NP16",)),
        ("Caldicot", "Cil-y-coed", ("NP26",)),
        ("Usk", "Brynbuga", ("NP15",)),
    ),
    "NWP": (("Newport", "Casnewydd", ("NP10", "NP19", "NP20")),),
    "POW": (
        ("Newtown", "Y Drenewydd", ("SY16",)),
        ("Welshpool", "Y Trallwng", ("SY21",)),
        ("Brecon", "Aberhonddu", ("LD3",)),
        ("Llandrindod Wells", "Llandrindod", ("LD1",)),
        ("Builth Wells", "Llanfair-ym-Muallt", ("LD2",)),
        ("Machynlleth", None, ("SY20",)),
        ("Ystradgynlais", None, ("SA9",)),
        ("Knighton", "Tref-y-clawdd", ("LD7",)),
    ),
    "MTY": (("Merthyr Tydfil", "Merthyr Tudful", ("CF47", "CF48")),),
}

# Streets with both an English and a Welsh form (translations are not always literal).
BILINGUAL_STREETS: tuple[tuple[str, str], ...] = (
    ("Mill Road", "Heol y Felin"), ("Church Street", "Stryd yr Eglwys"), ("High Street", "Stryd Fawr"),
    ("Station Road", "Heol yr Orsaf"), ("Chapel Street", "Stryd y Capel"), ("School Lane", "Lôn yr Ysgol"),
    ("Bridge Street", "Stryd y Bont"), ("New Road", "Ffordd Newydd"), ("Old Road", "Hen Ffordd"),
    ("Castle Street", "Stryd y Castell"), ("Park Road", "Heol y Parc"), ("Water Street", "Stryd y Dŵr"),
    ("Hill Street", "Stryd y Bryn"), ("Mountain Road", "Heol y Mynydd"), ("Well Street", "Stryd y Ffynnon"),
    ("Market Street", "Stryd y Farchnad"), ("North Road", "Ffordd y Gogledd"), ("Sea View", "Golwg y Môr"),
    ("Oak Close", "Clos y Dderwen"), ("Meadow Way", "Ffordd y Ddôl"), ("Chapel Road", "Heol y Capel"),
    ("Forge Lane", "Lôn yr Efail"), ("Quarry Road", "Heol y Chwarel"), ("Green Lane", "Lôn Werdd"),
)  # fmt: skip
WELSH_ONLY_STREETS: tuple[str, ...] = (
    "Maes y Coed", "Bro Dawel", "Cae Glas", "Llys Gwyn", "Tan y Bryn", "Pen y Bryn", "Bryn Teg", "Heol Isaf",
    "Maes Hyfryd", "Gwêl y Môr", "Ffordd Pentre", "Heol Fawr", "Stryd Llewelyn", "Cwrt y Castell",
    "Rhodfa'r Orsaf", "Lôn Goed", "Maes Glas", "Heol Ddu", "Trem y Mynydd", "Parc y Delyn",
)  # fmt: skip
ENGLISH_ONLY_STREETS: tuple[str, ...] = (
    "Victoria Road", "Queen Street", "King Street", "Windsor Road", "Albert Road", "Richmond Crescent",
    "Clive Road", "Wellington Street", "Elm Grove", "Beech Avenue", "Cedar Close", "Willow Drive",
    "Highfield Road", "Brookside", "The Crescent", "Kingsway", "Grove Park", "Alexandra Road",
    "Marine Parade", "Springfield Road", "Orchard Way", "Coronation Road", "Railway Terrace",
    "Bute Street", "Tudor Close", "Glanmor Road", "Pentwyn Drive",
)  # fmt: skip
HOUSE_NAMES: tuple[str, ...] = (
    "Bryn Awel", "Tŷ Gwyn", "Hafod", "Gorwel", "Pen y Bont", "Glan yr Afon", "Llys Hedd", "Bodlondeb",
    "Min y Môr", "Cartref", "The Cottage", "Rose Cottage", "Ty Newydd", "Awelon", "Maes yr Haf",
)  # fmt: skip

# Generated street names, for towns that need more streets than the named lists above hold.
_STREET_BASES: tuple[str, ...] = (
    "Glyndŵr", "Caradog", "Dewi", "Tegid", "Aeron", "Hafren", "Tawe", "Teifi", "Cynon", "Taf", "Elái",
    "Ogwen", "Conwy", "Berwyn", "Preseli", "Gwendraeth", "Llewellyn", "Pendre", "Maesteg", "Ceiriog",
    "Bryn", "Coed", "Glan", "Nant", "Pant", "Tegfan", "Heulwen", "Afallon", "Eifion", "Garth",
)  # fmt: skip
_ENGLISH_STREET_BASES: tuple[str, ...] = (
    "Victoria", "Albert", "Windsor", "Oakfield", "Ashgrove", "Clarence", "Stanley", "Gladstone", "Picton",
    "Nelson", "Lansdowne", "Brunswick", "Heathfield", "Woodland", "Fairview", "Hillside", "Valley",
    "Riverside", "Maple", "Hawthorn", "Rowan", "Larch", "Birch", "Poplar", "Chestnut", "Laurel",
)  # fmt: skip
_ENGLISH_SUFFIXES = ("Road", "Street", "Avenue", "Close", "Crescent", "Drive", "Terrace", "Way", "Gardens")
_WELSH_PREFIXES = ("Stryd", "Lôn", "Clos", "Maes", "Rhodfa", "Cwrt")
# Postcode inward-code letters: C, I, K, M, O, V never appear in the last two characters.
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_ADDRESSES_PER_UNIT = 18
_HIGHEST_HOUSE_NUMBER = 180


@dataclass(frozen=True, slots=True)
class LocalAuthority:
    register_code: str
    gss_code: str
    name: str
    health_board_gss: str
    pilot: bool
    population: int
    wg_number: int


@dataclass(frozen=True, slots=True)
class Street:
    """A street; `welsh` is the Welsh form when the street is bilingual."""

    name: str
    welsh: str | None


@dataclass(slots=True)
class Town:
    name: str
    name_cy: str | None
    la: LocalAuthority
    districts: tuple[str, ...]
    streets: list[Street] = field(default_factory=list)
    # Street names not yet used in this town; refilled (so names repeat, as in big cities) when empty.
    unused_streets: list[Street] = field(default_factory=list)
    # (street index, block of house numbers) -> postcode, filled lazily so units stay stable per run.
    units: dict[tuple[int, int], str] = field(default_factory=dict)
    # (street index, house number) already given to a household.
    occupied: set[tuple[int, int]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Address:
    """A true address: what the household's letterbox would say."""

    house_number: int | None
    house_name: str | None
    street: Street
    town: Town
    postcode: str


def _street_pool() -> list[Street]:
    pool = [Street(en, cy) for en, cy in BILINGUAL_STREETS]
    pool += [Street(name, None) for name in WELSH_ONLY_STREETS + ENGLISH_ONLY_STREETS]
    for base in _STREET_BASES:
        pool += [Street(f"{prefix} {base}", None) for prefix in _WELSH_PREFIXES]
        # Bilingual naming that translates the street type and keeps the name: "Glyndŵr Road"/"Heol Glyndŵr".
        pool.append(Street(f"{base} Road", f"Heol {base}"))
        pool.append(Street(f"{base} Way", f"Ffordd {base}"))
    for base in _ENGLISH_STREET_BASES:
        pool += [Street(f"{base} {suffix}", None) for suffix in _ENGLISH_SUFFIXES]
    return pool


@cache
def local_authorities() -> tuple[LocalAuthority, ...]:
    """The 22 principal LAs from the reference file, in file order."""
    data = json.loads(_REFERENCE.read_text(encoding="utf-8"))
    return tuple(
        LocalAuthority(
            register_code=la["register_code"],
            gss_code=la["gss_code"],
            name=la["name"],
            health_board_gss=la["health_board_gss"],
            pilot=bool(la["pilot"]),
            population=int(la["population_2020_all_ages"]),
            # The reference file leaves WG LA numbers null; 660 + position is the commonly cited range.
            wg_number=660 + index,
        )
        for index, la in enumerate(data["local_authorities"])
    )


class Gazetteer:
    """Towns, streets and postcode units for one generation run, all drawn from one seeded RNG.

    Streets are added to a town as it fills up, so every household gets an address of its own.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._pool = _street_pool()
        self.towns_by_la: dict[str, list[Town]] = {}
        self._used_units: set[str] = set()
        for la in local_authorities():
            towns = []
            for name, name_cy, districts in TOWNS[la.register_code]:
                town = Town(name=name, name_cy=name_cy, la=la, districts=districts)
                for _ in range(8 + 4 * len(districts)):
                    self._add_street(town)
                towns.append(town)
            self.towns_by_la[la.register_code] = towns

    def _add_street(self, town: Town) -> None:
        if not town.unused_streets:
            town.unused_streets = self._pool[:]
            self._rng.shuffle(town.unused_streets)
        town.streets.append(town.unused_streets.pop())

    def random_address(self, town: Town) -> Address:
        rng = self._rng
        # Keep streets at most half full so a free house is found in a couple of draws.
        while 2 * len(town.occupied) >= len(town.streets) * _HIGHEST_HOUSE_NUMBER:
            self._add_street(town)
        while True:
            street_index = rng.randrange(len(town.streets))
            house_number = rng.randint(1, _HIGHEST_HOUSE_NUMBER)
            if (street_index, house_number) not in town.occupied:
                break
        town.occupied.add((street_index, house_number))
        # Rural Wales: some houses have a name and no number.
        house_name = rng.choice(HOUSE_NAMES) if rng.random() < 0.06 else None
        postcode = self._postcode(town, street_index, house_number // _ADDRESSES_PER_UNIT)
        return Address(
            house_number=None if house_name else house_number,
            house_name=house_name,
            street=town.streets[street_index],
            town=town,
            postcode=postcode,
        )

    def _postcode(self, town: Town, street_index: int, block: int) -> str:
        key = (street_index, block)
        existing = town.units.get(key)
        if existing is not None:
            return existing
        rng = self._rng
        district = town.districts[(street_index + block) % len(town.districts)]
        while True:
            unit = f"{district} {rng.randint(1, 9)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"
            if unit not in self._used_units:
                break
        self._used_units.add(unit)
        town.units[key] = unit
        return unit
