"""Partner registry rules: ids by kind, areas, the demo seed, key registration."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.config import wales_reference
from app.core.jose_adapter import KeyAlg
from app.partners import service
from app.partners.exceptions import InvalidPartner, KeyAlreadyExists
from app.partners.models import PartnerKind
from app.partners.schemas import PartnerCreate
from tests.support.keys import new_key

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def test_demo_seed_holds_every_la_and_health_board_of_the_reference_data() -> None:
    seed = service.load_seed_file()
    reference = wales_reference()
    by_kind = {kind: {p.id for p in seed if p.kind is kind} for kind in PartnerKind}
    assert by_kind[PartnerKind.local_authority] == {la["gss_code"] for la in reference["local_authorities"]}
    assert by_kind[PartnerKind.local_health_board] == {hb["gss_code"] for hb in reference["health_boards"]}
    assert by_kind[PartnerKind.welsh_government] == {"WG"}
    assert by_kind[PartnerKind.gp_practice]
    assert len(by_kind[PartnerKind.independent_school]) == 1


@pytest.mark.parametrize(
    ("partner_id", "kind"),
    [("W06000001", PartnerKind.local_authority), ("W11000023", PartnerKind.local_health_board),
     ("W97001", PartnerKind.gp_practice), ("6604001", PartnerKind.independent_school),
     ("WG", PartnerKind.welsh_government)],
)  # fmt: skip
def test_valid_ids(partner_id: str, kind: PartnerKind) -> None:
    assert PartnerCreate(id=partner_id, kind=kind, name="X").id == partner_id


def test_area_only_for_practices_and_schools() -> None:
    with pytest.raises(ValidationError):
        PartnerCreate(id="W06000001", kind=PartnerKind.local_authority, name="X", area_id="W11000023")


def test_school_cannot_sit_in_a_health_board(session: Session) -> None:
    service.create_partner(
        session,
        PartnerCreate(id="W11000023", kind=PartnerKind.local_health_board, name="B"),
        pilot_las=(),
        now=NOW,
    )
    school = PartnerCreate(id="6604001", kind=PartnerKind.independent_school, name="S", area_id="W11000023")
    with pytest.raises(InvalidPartner):
        service.create_partner(session, school, pilot_las=(), now=NOW)


def test_only_las_are_pilot(session: Session) -> None:
    board = service.create_partner(
        session,
        PartnerCreate(id="W11000023", kind=PartnerKind.local_health_board, name="B"),
        pilot_las=("W11000023",),
        now=NOW,
    )
    la = service.create_partner(
        session,
        PartnerCreate(id="W06000001", kind=PartnerKind.local_authority, name="A"),
        pilot_las=("W06000001",),
        now=NOW,
    )
    assert (board.is_pilot, la.is_pilot) == (False, True)


class TestRegisterKey:
    @pytest.fixture(autouse=True)
    def _partner(self, session: Session) -> None:
        service.create_partner(
            session,
            PartnerCreate(id="WG", kind=PartnerKind.welsh_government, name="WG"),
            pilot_las=(),
            now=NOW,
        )

    def test_kid_and_alg_come_from_the_jwk(self, session: Session) -> None:
        key = new_key("RS512")
        stored = service.register_key(
            session, "WG", {**key.public_jwk, "kid": "rsa-2026", "alg": "RS512"}, now=NOW
        )
        assert (stored.kid, stored.alg, stored.kty, stored.crv) == ("rsa-2026", KeyAlg.RS512, "RSA", None)
        assert stored.public_jwk == {**key.public_jwk, "kid": "rsa-2026", "alg": "RS512", "use": "sig"}
        assert stored.not_before == NOW

    def test_duplicate_kid(self, session: Session) -> None:
        service.register_key(session, "WG", new_key().public_jwk, kid="k1", now=NOW)
        with pytest.raises(KeyAlreadyExists):
            service.register_key(session, "WG", new_key().public_jwk, kid="k1", now=NOW)

    def test_same_kid_for_two_partners_is_fine(self, session: Session) -> None:
        service.create_partner(
            session,
            PartnerCreate(id="W06000001", kind=PartnerKind.local_authority, name="A"),
            pilot_las=(),
            now=NOW,
        )
        service.register_key(session, "WG", new_key().public_jwk, kid="k1", now=NOW)
        assert service.register_key(session, "W06000001", new_key().public_jwk, kid="k1", now=NOW).kid == "k1"
