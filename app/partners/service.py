"""Use cases of the partner registry: onboarding, suspension, key registration, rotation and revocation.

Services never commit; the caller (request, CLI command) owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.jose_adapter import InvalidKey, KeyAlg, validate_public_jwk
from app.partners import repository
from app.partners.exceptions import (
    InvalidPartner,
    KeyAlreadyExists,
    KeyNotFound,
    PartnerAlreadyExists,
    PartnerNotFound,
)
from app.partners.models import Partner, PartnerKey, PartnerKind, PartnerStatus
from app.partners.repository import SigningKeyStatus
from app.partners.schemas import AREA_KINDS, KID_PATTERN, PartnerCreate, SeedFile

_ALG_FOR_KTY = {"EC": KeyAlg.ES256, "RSA": KeyAlg.RS512}


def get_partner(session: Session, partner_id: str) -> Partner:
    partner = repository.get_partner(session, partner_id)
    if partner is None:
        raise PartnerNotFound(f"No partner {partner_id}.")
    return partner


def create_partner(
    session: Session, data: PartnerCreate, *, pilot_las: Collection[str], now: dt.datetime
) -> Partner:
    if repository.get_partner(session, data.id) is not None:
        raise PartnerAlreadyExists(f"Partner {data.id} already exists.")
    if data.area_id is not None:
        area = repository.get_partner(session, data.area_id)
        if area is None or area.kind not in AREA_KINDS[data.kind]:
            raise InvalidPartner(f"area_id {data.area_id} is not a partner a {data.kind} can sit in.")
    partner = Partner(
        id=data.id,
        kind=data.kind,
        name=data.name,
        status=PartnerStatus.active,
        is_pilot=data.kind is PartnerKind.local_authority and data.id in pilot_las,
        area_id=data.area_id,
        created_at=now,
    )
    repository.add_partner(session, partner)
    return partner


def list_partners(session: Session, kind: PartnerKind | None = None) -> Sequence[Partner]:
    return repository.list_partners(session, kind)


def set_status(session: Session, partner_id: str, status: PartnerStatus) -> Partner:
    partner = get_partner(session, partner_id)
    partner.status = status
    session.flush()
    return partner


@dataclass(frozen=True, slots=True)
class SeedResult:
    created: list[str]
    already_present: list[str]


def load_seed_file(text: str | None = None) -> list[PartnerCreate]:
    """Partners from a seed file's text, or from the demo seed shipped with the package."""
    if text is None:
        text = resources.files("app.partners").joinpath("seed/demo-partners.json").read_text(encoding="utf-8")
    try:
        return SeedFile.model_validate_json(text).partners
    except ValidationError as exc:
        raise InvalidPartner(f"The seed file is invalid ({exc.error_count()} errors).") from exc


def seed_partners(
    session: Session, partners: Sequence[PartnerCreate], *, pilot_las: Collection[str], now: dt.datetime
) -> SeedResult:
    """Create the partners not yet present; existing ones are left as they are (re-running is harmless)."""
    created: list[str] = []
    present: list[str] = []
    # Areas (LAs, health boards) first, so practices and schools can refer to them.
    for data in sorted(partners, key=lambda p: p.area_id is not None):
        if repository.get_partner(session, data.id) is not None:
            present.append(data.id)
            continue
        create_partner(session, data, pilot_las=pilot_las, now=now)
        created.append(data.id)
    return SeedResult(created=created, already_present=present)


def seed_if_empty(session: Session, *, pilot_las: Collection[str] | None = None) -> int:
    """Seed the demo registry into an empty database (the one-command start); return how many were created."""
    if repository.list_partners(session):
        return 0
    result = seed_partners(
        session,
        load_seed_file(),
        pilot_las=get_settings().pilot_las if pilot_las is None else pilot_las,
        now=dt.datetime.now(dt.UTC),
    )
    return len(result.created)


def _alg_for(jwk: Mapping[str, Any], alg: KeyAlg | None) -> KeyAlg:
    if alg is not None:
        return alg
    named = jwk.get("alg")
    if named is not None:
        if named not in set(KeyAlg):
            raise InvalidKey("The JWK names an algorithm that is not allowed.")
        return KeyAlg(named)
    inferred = _ALG_FOR_KTY.get(str(jwk.get("kty")))
    if inferred is None:
        raise InvalidKey("Only EC (P-256) and RSA keys are accepted.")
    return inferred


def register_key(
    session: Session,
    partner_id: str,
    jwk: object,
    *,
    now: dt.datetime,
    alg: KeyAlg | None = None,
    kid: str | None = None,
    not_before: dt.datetime | None = None,
) -> PartnerKey:
    """Register a public key bound to one algorithm; `kid` defaults to the JWK's, else its thumbprint."""
    if not isinstance(jwk, Mapping):
        raise InvalidKey("A JWK must be a JSON object.")
    partner = get_partner(session, partner_id)
    validated = validate_public_jwk(jwk, _alg_for(jwk, alg))
    chosen_kid = kid or jwk.get("kid") or validated.thumbprint
    if not isinstance(chosen_kid, str) or not KID_PATTERN.fullmatch(chosen_kid):
        raise InvalidKey("kid must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    if repository.get_key(session, partner.id, chosen_kid) is not None:
        raise KeyAlreadyExists(f"Partner {partner.id} already has a key {chosen_kid}.")
    key = PartnerKey(
        partner_id=partner.id,
        kid=chosen_kid,
        alg=validated.alg,
        kty=validated.kty,
        crv=validated.crv,
        public_jwk={**validated.jwk, "kid": chosen_kid, "alg": validated.alg.value, "use": "sig"},
        thumbprint=validated.thumbprint,
        not_before=not_before or now,
        revoked_at=None,
        created_at=now,
    )
    repository.add_key(session, key)
    return key


def parse_jwk(text: str) -> object:
    try:
        parsed: object = json.loads(text)
    except ValueError as exc:
        raise InvalidKey("The JWK is not JSON.") from exc
    return parsed


def list_keys(session: Session, partner_id: str) -> Sequence[PartnerKey]:
    get_partner(session, partner_id)
    return repository.list_keys(session, partner_id)


def revoke_key(session: Session, partner_id: str, kid: str, *, now: dt.datetime) -> PartnerKey:
    """Revocation takes effect at once: tokens signed with the key are refused from `now`."""
    key = repository.get_key(session, partner_id, kid)
    if key is None:
        raise KeyNotFound(f"Partner {partner_id} has no key {kid}.")
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return key


def signing_key(session: Session, partner_id: str, kid: str) -> SigningKeyStatus | None:
    """The key registered as (partner, kid) with its partner's status, for signature checks."""
    return repository.get_signing_key(session, partner_id, kid)
