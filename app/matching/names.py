"""Given-name equivalence: Welsh/English forms, nicknames and diminutives.

Each group is one "name identity"; a folded name may belong to more than one group (Ieuan is both a John
and an Evan; Alex is Alexander or Alexandra). Two given names are *equivalent* when their groups
intersect. Only the first two groups of a name are kept: that covers every entry below and keeps the
comparison vectorisable as four equality tests.
"""

from __future__ import annotations

from functools import cache

from app.matching.normalise import fold

# Written for this project from general knowledge of Welsh and English naming; keys are the group labels.
_GROUPS: dict[str, tuple[str, ...]] = {
    "john": ("john", "sion", "shon", "sean", "shaun", "shawn", "ioan", "iwan", "ieuan", "ifan", "iefan",
             "ianto", "johnny", "johnnie", "jonny", "jon", "sioncyn", "jack", "jac"),
    "evan": ("evan", "efan", "ieuan", "ifan", "iefan", "ianto", "ifor"),
    "ivor": ("ivor", "ifor"),
    "david": ("david", "dafydd", "dai", "dave", "davey", "davie", "davy", "deicyn", "dafi", "dewi"),
    "william": ("william", "gwilym", "wiliam", "will", "wil", "bill", "billy", "willy", "willie", "liam", "gwil"),
    "hugh": ("hugh", "huw", "hughie", "huwcyn", "hughey"),
    "jane": ("jane", "sian", "siani", "janey", "jayne"),
    "janet": ("janet", "sioned", "jenny", "janette"),
    "joan": ("joan", "siwan", "joanne", "joanna"),
    "catherine": ("catherine", "catrin", "cathryn", "katherine", "kathryn", "katharine", "kate", "katie",
                  "katy", "cath", "cathy", "kat", "caitlin", "catrina", "katrina", "kathy"),
    "mary": ("mary", "mair", "mari", "molly", "polly", "maria", "mared"),
    "margaret": ("margaret", "marged", "mared", "megan", "meg", "maggie", "peggy", "mererid", "margo"),
    "rhys": ("rhys", "rees", "reece", "reese", "rhydian"),
    "llywelyn": ("llywelyn", "llewellyn", "llewelyn", "llewelin", "llew", "llyr"),
    "howell": ("hywel", "howell", "howel", "hywell"),
    "griffith": ("gruffudd", "gruffydd", "griffith", "griff", "gruff", "guto", "griffin"),
    "thomas": ("thomas", "tomos", "tom", "tommy", "twm", "thom"),
    "harry": ("harry", "harri", "hari", "henry", "hal", "harrison"),
    "alice": ("alice", "alys", "ali", "alis"),
    "ella": ("ella", "ela", "ellie", "elli"),
    "lily": ("lily", "lili", "lilly", "lillie", "lilian", "lillian"),
    "eve": ("eve", "efa", "eva", "ava", "evie"),
    "nancy": ("nancy", "nansi", "nan"),
    "elizabeth": ("elizabeth", "elisabeth", "eliza", "liz", "lizzie", "lizzy", "beth", "betsy", "bethan",
                  "betsan", "libby", "lisa", "elspeth"),
    "anne": ("anne", "ann", "annie", "anna", "anni", "nan"),
    "helen": ("helen", "elen", "elin", "ellen", "nell", "nelly", "eleanor", "elinor", "ellie"),
    "sarah": ("sarah", "sara", "sal", "sally", "sadie"),
    "laura": ("laura", "lowri", "lora"),
    "richard": ("richard", "rhisiart", "rich", "rick", "ricky", "richie", "dick", "ritchie"),
    "robert": ("robert", "robat", "rob", "robbie", "robby", "bob", "bobby", "robin"),
    "edward": ("edward", "iorwerth", "ned", "ted", "teddy", "eddie", "eddy", "ed"),
    "owen": ("owen", "owain", "owin", "ywain"),
    "matthew": ("matthew", "mathew", "mathau", "matt", "matty", "matthias"),
    "peter": ("peter", "pedr", "pete"),
    "stephen": ("stephen", "steffan", "steven", "stefan", "steve", "stevie"),
    "andrew": ("andrew", "andreas", "andy", "drew"),
    "james": ("james", "iago", "jago", "jim", "jimmy", "jamie", "jamey"),
    "joseph": ("joseph", "joe", "joey", "joss", "josef"),
    "samuel": ("samuel", "sam", "sammy", "samwel"),
    "samantha": ("samantha", "sam", "sammie"),
    "benjamin": ("benjamin", "ben", "benji", "benny", "bennie"),
    "daniel": ("daniel", "dan", "danny", "deiniol"),
    "alexander": ("alexander", "alex", "alec", "alexandre", "xander", "sandy", "alistair", "alasdair"),
    "alexandra": ("alexandra", "alex", "alexa", "lexi", "sasha"),
    "christopher": ("christopher", "chris", "kit", "christoffer"),
    "michael": ("michael", "mihangel", "mike", "mikey", "mickey", "mick"),
    "nicholas": ("nicholas", "nicolas", "nick", "nicky", "nico", "niclas"),
    "anthony": ("anthony", "antony", "tony"),
    "charles": ("charles", "siarl", "charlie", "chas", "carl"),
    "charlotte": ("charlotte", "lottie", "charlie", "lotti"),
    "george": ("george", "sior", "siors", "georgie"),
    "patrick": ("patrick", "padrig", "paddy", "pat"),
    "francis": ("francis", "ffransis", "frank", "frankie"),
    "lewis": ("lewis", "louis", "lewys", "lew", "lou"),
    "oliver": ("oliver", "ollie", "olly", "olifer"),
    "olivia": ("olivia", "liv", "livvy", "livia"),
    "jacob": ("jacob", "jake", "jakob", "iago"),
    "joshua": ("joshua", "josh", "joshy"),
    "zachary": ("zachary", "zach", "zack", "zac"),
    "alfred": ("alfred", "alfie", "alf", "alfi"),
    "archibald": ("archibald", "archie", "archi"),
    "frederick": ("frederick", "freddie", "freddy", "fred", "frederic"),
    "theodore": ("theodore", "theo", "teddy"),
    "sebastian": ("sebastian", "seb", "bastian"),
    "timothy": ("timothy", "tim", "timmy"),
    "emily": ("emily", "emmie", "emmy", "em", "emilie"),
    "emma": ("emma", "emmie", "em"),
    "sophie": ("sophie", "sophia", "soffi", "sofia", "soph"),
    "isabella": ("isabella", "isabel", "isobel", "isabelle", "bella", "izzy", "issy", "isla"),
    "abigail": ("abigail", "abi", "abbie", "abby", "abbi"),
    "amelia": ("amelia", "emilia", "millie", "milly", "amy"),
    "jessica": ("jessica", "jess", "jessie", "jessi"),
    "rebecca": ("rebecca", "rebekah", "becca", "becky", "beca"),
    "victoria": ("victoria", "vicky", "vicki", "tori", "tory"),
    "gwenllian": ("gwenllian", "gwen", "gwenno"),
    "gwendolen": ("gwendolen", "gwendoline", "gwen", "gwenno", "wendy"),
    "cerys": ("cerys", "ceris", "ceri"),
    "ffion": ("ffion", "fion", "fionn"),
    "dylan": ("dylan", "dilan", "dillon"),
    "ambrose": ("ambrose", "emrys"),
    "ellis": ("ellis", "elis", "elias", "elys"),
    "meredith": ("meredith", "meredydd", "maredudd"),
    "mabel": ("mabel", "mabli"),
    "justin": ("justin", "iestyn"),
    "kai": ("kai", "cai", "kay", "caio"),
    "max": ("max", "macsen", "maxen", "maximilian", "maxwell", "maxim"),
    "nathaniel": ("nathaniel", "nathan", "nat", "nate"),
    "gabriel": ("gabriel", "gabe", "gabi"),
    "jennifer": ("jennifer", "jenny", "jen", "jenni", "gwenhwyfar"),
    "gareth": ("gareth", "gary", "garry"),
    "luke": ("luke", "luc", "lucas", "luka"),
    "mark": ("mark", "marc", "marcus", "markus"),
    "paul": ("paul", "pawl"),
    "philip": ("philip", "phillip", "phil", "pip"),
    "isaac": ("isaac", "isaak", "ike", "izaak"),
    "noah": ("noah", "noa"),
    "lucy": ("lucy", "lucie", "luci", "lucia"),
    "grace": ("grace", "gracie", "gras"),
    "evelyn": ("evelyn", "evie", "eve"),
    "harriet": ("harriet", "hattie", "harri"),
    "penelope": ("penelope", "penny", "poppy"),
    "madeleine": ("madeleine", "madeline", "madison", "maddie", "maddy"),
    "roderick": ("roderick", "rhodri", "roddy", "rod"),
    "tudor": ("tudor", "tudur"),
    "aneurin": ("aneurin", "aneirin", "nye"),
    "muhammad": ("muhammad", "mohammed", "mohammad", "mohamed", "muhammed", "mohamad", "mohammod"),
    "mathilda": ("matilda", "mathilda", "tilly", "tillie"),
}  # fmt: skip

_LOOKUP: dict[str, tuple[str, ...]] = {}
for _label, _members in _GROUPS.items():
    for _member in _members:
        _LOOKUP.setdefault(_member, ())
        if _label not in _LOOKUP[_member]:
            _LOOKUP[_member] = (*_LOOKUP[_member], _label)


@cache
def given_groups(folded_name: str | None) -> tuple[str | None, str | None]:
    """The first two identity groups of a folded given name; a name outside the table is its own group."""
    if folded_name is None:
        return None, None
    groups = _LOOKUP.get(folded_name, (folded_name,))
    return groups[0], groups[1] if len(groups) > 1 else None


def equivalent(left: str, right: str) -> bool:
    """True when two given names (any spelling, accents or case) share an identity group."""
    left_groups = {g for g in given_groups(fold(left)) if g}
    right_groups = {g for g in given_groups(fold(right)) if g}
    return bool(left_groups & right_groups)
