"""Name tables for the synthetic population: frequencies, known-as equivalents, twin pairs.

Frequencies are shaped, not sourced: a steep rank curve so a handful of surnames (Jones, Davies,
Williams ...) cover about half the population, as in Wales, and given names follow a Zipf-like curve
over a mixed Welsh and English list. Every value here is invented for testing; none is a real person.
"""

from __future__ import annotations

# Surnames, most common first. Weights follow the order (see `rank_weights`), and the first few
# carry most of the mass, which is what makes Welsh name + date-of-birth collisions common.
SURNAMES: tuple[str, ...] = (
    "Jones", "Davies", "Williams", "Evans", "Thomas", "Roberts", "Hughes", "Lewis", "Morgan",
    "Griffiths", "Edwards", "Jenkins", "James", "Owen", "Rees", "Price", "Phillips", "Smith", "Lloyd",
    "Parry", "Harris", "Richards", "Morris", "Ellis", "Powell", "Howells", "Pritchard", "Bowen",
    "Rowlands", "Watkins", "Pugh", "Bevan", "Vaughan", "Hopkins", "Llewellyn", "Mathias", "Probert",
    "Prosser", "Gwynne", "Wynne", "Brown", "Taylor", "Wilson", "Walker", "Wright", "Green", "Hall",
    "Wood", "Clarke", "Johnson", "Robinson", "Thompson", "White", "Khan", "Ali", "Ahmed", "Begum",
    "Patel", "Nowak", "Kowalski", "Chen", "Nguyen", "Ap Iorwerth", "Ifans", "Gruffydd", "Bebb",
    "Cadwaladr", "Tudur", "Madog", "Rhydderch",
)  # fmt: skip

# Second halves for created double-barrelled surnames (the first half is drawn from SURNAMES).
SURNAME_PREFIXES: tuple[str, ...] = (
    "Lloyd", "Wynne", "Pryce", "Vaughan", "Rhys", "Llewelyn", "Meredith", "Parry", "Hughes", "Owen",
)  # fmt: skip

# Given names by sex, most popular first within each list.
GIRLS: tuple[str, ...] = (
    "Ffion", "Olivia", "Cerys", "Amelia", "Mabli", "Isla", "Seren", "Ava", "Alys", "Lily", "Ela",
    "Freya", "Megan", "Grace", "Siân", "Evie", "Lili", "Ella", "Efa", "Poppy", "Catrin", "Sophie",
    "Elin", "Ruby", "Lowri", "Emily", "Nia", "Isabella", "Mali", "Charlotte", "Gwenllïan", "Elizabeth",
    "Nansi", "Jessica", "Eira", "Chloe", "Heledd", "Hannah", "Manon", "Amelie", "Mared", "Willow",
    "Angharad", "Erin", "Bethan", "Zara", "Carys", "Rosie", "Fflur", "Mary", "Gwen", "Jane", "Rhiannon",
    "Catherine", "Sioned", "Alice", "Tegan", "Eve", "Non", "Nancy", "Begw", "Maisie", "Eleri", "Mair",
    "Hâf", "Lisa", "Delyth", "Rhian", "Mari", "Nel", "Elen", "Anwen", "Gwawr", "Llio", "Lleucu",
)  # fmt: skip
BOYS: tuple[str, ...] = (
    "Osian", "Noah", "Ioan", "Oliver", "Dylan", "George", "Rhys", "Arthur", "Tomos", "Leo", "Harri",
    "Muhammad", "Jac", "Oscar", "Cai", "Theo", "Dafydd", "Freddie", "Siôn", "Alfie", "Elis", "Jacob",
    "Macsen", "Jack", "Gethin", "Harry", "Gruffudd", "Thomas", "Gwilym", "William", "Huw", "David",
    "Ieuan", "John", "Iwan", "Evan", "Llywelyn", "James", "Hywel", "Charlie", "Steffan", "Henry",
    "Owain", "Archie", "Aled", "Joshua", "Emyr", "Ethan", "Gareth", "Mason", "Geraint", "Logan",
    "Tudur", "Riley", "Morgan", "Hugh", "Tristan", "Rees", "Nedw", "Dyfan", "Deian", "Twm", "Sion",
    "Bedwyr", "Ianto", "Math", "Guto", "Iestyn", "Idris", "Rhodri", "Caio", "Efan", "Gwion",
)  # fmt: skip

# Known-as names: forms under which the same child may appear on another list. Welsh/English
# equivalents, diminutives and common short forms. Keys are the registered given name.
KNOWN_AS: dict[str, tuple[str, ...]] = {
    "Dafydd": ("David", "Dai", "Dafy"),
    "David": ("Dafydd", "Dave", "Dai"),
    "Siôn": ("John", "Sion", "Shôn"),
    "Sion": ("John", "Siôn"),
    "John": ("Siôn", "Johnny", "Jack"),
    "Gwilym": ("William", "Wil", "Gwil"),
    "William": ("Will", "Gwilym", "Liam", "Billy"),
    "Siân": ("Jane", "Sian"),
    "Jane": ("Siân",),
    "Ieuan": ("Evan", "Iwan", "Ifan"),
    "Evan": ("Ieuan", "Ifan"),
    "Ioan": ("John", "Iwan"),
    "Iwan": ("Ieuan", "Ioan"),
    "Huw": ("Hugh", "Huwcyn"),
    "Hugh": ("Huw", "Hughie"),
    "Rhys": ("Rees", "Reece"),
    "Rees": ("Rhys", "Reece"),
    "Catrin": ("Catherine", "Cat", "Cati"),
    "Catherine": ("Catrin", "Kate", "Cathy", "Katie"),
    "Elizabeth": ("Beth", "Lisa", "Liz", "Libby", "Elisabeth"),
    "Gwenllïan": ("Gwen", "Gwenllian"),
    "Tomos": ("Thomas", "Tom", "Twm"),
    "Thomas": ("Tom", "Tomos", "Tommy"),
    "Harri": ("Harry",),
    "Harry": ("Harri", "Henry"),
    "Henry": ("Harry", "Harri"),
    "Jac": ("Jack",),
    "Jack": ("Jac", "John"),
    "Alys": ("Alice",),
    "Alice": ("Alys", "Ali"),
    "Ela": ("Ella",),
    "Ella": ("Ela",),
    "Lili": ("Lily",),
    "Lily": ("Lili",),
    "Efa": ("Eve", "Ava"),
    "Eve": ("Efa", "Evie"),
    "Evie": ("Eve", "Efa"),
    "Nansi": ("Nancy",),
    "Nancy": ("Nansi",),
    "Mair": ("Mary",),
    "Mary": ("Mair", "Molly"),
    "Hywel": ("Howell", "Howel"),
    "Gruffudd": ("Griffith", "Gruff", "Gruffydd"),
    "Llywelyn": ("Llewellyn", "Llew", "Llywelyn"),
    "Owain": ("Owen",),
    "Steffan": ("Stephen", "Steff"),
    "Twm": ("Tom", "Thomas"),
    "Guto": ("Gruffudd", "Griffith"),
    "Ianto": ("Ifan", "Evan"),
    "Joshua": ("Josh",),
    "Oliver": ("Ollie", "Olly"),
    "Olivia": ("Liv", "Livvy"),
    "Freddie": ("Fred", "Frederick"),
    "Archie": ("Archibald",),
    "Charlie": ("Charles",),
    "Isabella": ("Bella", "Izzy"),
    "Jessica": ("Jess",),
    "Charlotte": ("Lottie", "Charlie"),
    "Amelia": ("Millie", "Amy"),
    "Sophie": ("Sophia",),
    "Gwen": ("Gwenllïan",),
    "Rhiannon": ("Rhi",),
    "Angharad": ("Anghy",),
    "Bethan": ("Beth",),
    "Megan": ("Meg",),
    "Muhammad": ("Mohammed", "Mohammad"),
    "Alfie": ("Alfred",),
    "Macsen": ("Max",),
    "Iestyn": ("Justin",),
    "Rhodri": ("Roderick",),
    "Efan": ("Evan",),
}

# Twins sometimes get deliberately similar names; these pairs are the hard cases for a matcher.
SIMILAR_TWIN_NAMES: tuple[tuple[str, str, str, str], ...] = (
    # (first name, sex, second name, sex)
    ("Ffion", "F", "Fflur", "F"),
    ("Cerys", "F", "Carys", "F"),
    ("Siôn", "M", "Siân", "F"),
    ("Osian", "M", "Owain", "M"),
    ("Elin", "F", "Eleri", "F"),
    ("Rhys", "M", "Rhian", "F"),
    ("Mali", "F", "Mari", "F"),
    ("Dylan", "M", "Dyfan", "M"),
    ("Ioan", "M", "Iwan", "M"),
    ("Gwen", "F", "Gwion", "M"),
    ("Lili", "F", "Llio", "F"),
    ("Elis", "M", "Ela", "F"),
    ("Harri", "M", "Harry", "M"),
    ("Nel", "F", "Elen", "F"),
)


def rank_weights(count: int, exponent: float) -> list[float]:
    """Zipf-like weights for a list ordered most common first."""
    return [1.0 / (rank + 1.5) ** exponent for rank in range(count)]
