"""Inbound submission schemas: exactly the data items the law names, nothing more.

Structural problems (wrong types, unknown fields, malformed dates) fail validation here and reject the
whole submission. Record-level data problems (missing name, postcode that does not parse, date of birth
outside compulsory school age) are *not* schema errors: every name/address/date field is optional at this
layer and `app.submissions.rules` decides each record's fate, so a sender always learns every record's fate.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from app.core.text import NO_CONTROL_PATTERN, ShortText, Text

NhsNumberText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=12, pattern=NO_CONTROL_PATTERN)
]


class SubmissionKind(StrEnum):
    health_register = "health_register"
    school_roll = "school_roll"
    ehe_register = "ehe_register"
    eotas_register = "eotas_register"


EDUCATION_KINDS = frozenset(
    {SubmissionKind.school_roll, SubmissionKind.ehe_register, SubmissionKind.eotas_register}
)


class InboundModel(BaseModel):
    """Base for everything a partner sends: unknown fields are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class FormerName(InboundModel):
    given_name: Text | None = None
    family_name: Text | None = None


class Address(InboundModel):
    """Schedule 2 para 2: address or last known address, including postcode."""

    lines: list[Text] = Field(default_factory=list, max_length=6)
    town: Text | None = None
    postcode: ShortText | None = None


class _ChildRecord(InboundModel):
    """Schedule 2 paras 1-3: names (including former names), address with postcode, date of birth."""

    given_name: Text | None = None
    middle_names: Text | None = None
    family_name: Text | None = None
    former_names: list[FormerName] = Field(default_factory=list, max_length=10)
    date_of_birth: dt.date | None = None
    address: Address | None = None
    nhs_number: NhsNumberText | None = Field(
        default=None,
        description="Only accepted where the deployment has switched NHS numbers on (CME_NHS_NUMBER_ENABLED). "
        "Not a Schedule 2 item; validated with its modulus-11 check.",
    )

    @field_validator("nhs_number")
    @classmethod
    def _nhs_number_switched_on(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not (info.context or {}).get("nhs_number_enabled", False):
            raise ValueError("NHS numbers are not accepted by this deployment")
        return value


class HealthRecord(_ChildRecord):
    """A child of compulsory school age usually resident in the recipient pilot LA's area (reg 4)."""

    address_is_last_known: bool = False


class Sex(StrEnum):
    female = "F"
    male = "M"
    other = "X"
    unknown = "U"


class EducationRecord(_ChildRecord):
    """A child known to education: common items of school rolls, EHE and EOTAS registers.

    Send every child on the register, however incomplete: a record without a date of birth or an address
    is stored, flagged in the receipt, and matched on what it holds. Only a record that identifies nobody
    (no given name, no family name and no valid NHS number) is rejected.
    """

    preferred_given_name: Text | None = None
    preferred_family_name: Text | None = None
    sex: Sex | None = None


class School(InboundModel):
    number: Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")] = Field(
        description="Welsh Government school number (LA number + establishment number)."
    )
    name: Text | None = None


class SchoolRollRecord(EducationRecord):
    school: School
    admission_date: dt.date | None = None


class ProvisionType(StrEnum):
    pupil_referral_unit = "pupil_referral_unit"
    education_other = "education_other"
    awaiting_provision = "awaiting_provision"


class Provision(InboundModel):
    type: ProvisionType
    name: Text | None = None


class EotasRecord(EducationRecord):
    provision: Provision


class _SubmissionBase(InboundModel):
    submission_id: uuid.UUID = Field(
        description="Chosen by the sender; re-sending the same id is idempotent."
    )
    sender: ShortText = Field(description="Partner id of the sender; must equal the signer.")
    recipient: ShortText | None = Field(
        default=None, description="Partner id of the recipient local authority, where the kind has one."
    )
    as_of: dt.date = Field(description="The date the list describes.")
    scope: ShortText | None = Field(
        default=None,
        description="Optional part of the sender's register this snapshot replaces (for example a school number). "
        "A register submission replaces the sender's previous snapshot of the same kind and scope.",
    )


class HealthRegisterSubmission(_SubmissionBase):
    kind: Literal[SubmissionKind.health_register]
    records: list[HealthRecord]


class SchoolRollSubmission(_SubmissionBase):
    kind: Literal[SubmissionKind.school_roll]
    records: list[SchoolRollRecord]


class EheRegisterSubmission(_SubmissionBase):
    kind: Literal[SubmissionKind.ehe_register]
    records: list[EducationRecord]


class EotasRegisterSubmission(_SubmissionBase):
    kind: Literal[SubmissionKind.eotas_register]
    records: list[EotasRecord]


# A submission's own members: none of its records' models has a field of these names, so each may appear
# once in a payload (strict_json.repeated_member; tests/submissions/test_duplicate_members.py checks both).
ENVELOPE_MEMBERS = ("submission_id", "kind", "sender", "recipient", "as_of", "scope", "records")

SubmissionPayload = Annotated[
    HealthRegisterSubmission | SchoolRollSubmission | EheRegisterSubmission | EotasRegisterSubmission,
    Field(discriminator="kind"),
]


# --- Bulk intake of health lists -------------------------------------------------------------------------
# The same health-list schema with records as plain dicts (TypedDicts) instead of models: about a third
# less time to validate 500,000 records and far less memory. It is only an accelerator: a payload it
# refuses is validated again against `SubmissionPayload`, whose errors are the ones reported, so it must
# accept exactly what `HealthRegisterSubmission` accepts (tests/submissions/test_bulk_schema.py).
# Keys the sender left out are absent from the dicts (the models fill in their defaults).

_BULK_CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _nhs_number_switched_on(value: str | None, info: ValidationInfo) -> str | None:
    if value is not None and not (info.context or {}).get("nhs_number_enabled", False):
        raise ValueError("NHS numbers are not accepted by this deployment")
    return value


@with_config(_BULK_CONFIG)
class FormerNameItem(TypedDict):
    given_name: NotRequired[Text | None]
    family_name: NotRequired[Text | None]


@with_config(_BULK_CONFIG)
class AddressItem(TypedDict):
    lines: NotRequired[Annotated[list[Text], Field(max_length=6)]]
    town: NotRequired[Text | None]
    postcode: NotRequired[ShortText | None]


@with_config(_BULK_CONFIG)
class HealthRecordItem(TypedDict):
    given_name: NotRequired[Text | None]
    middle_names: NotRequired[Text | None]
    family_name: NotRequired[Text | None]
    former_names: NotRequired[Annotated[list[FormerNameItem], Field(max_length=10)]]
    date_of_birth: NotRequired[dt.date | None]
    address: NotRequired[AddressItem | None]
    nhs_number: NotRequired[
        Annotated[
            NhsNumberText | None,
            AfterValidator(_nhs_number_switched_on),
        ]
    ]
    address_is_last_known: NotRequired[bool]


class HealthRegisterBulk(_SubmissionBase):
    """`HealthRegisterSubmission` with its records as `HealthRecordItem` dicts."""

    kind: Literal[SubmissionKind.health_register]
    records: list[HealthRecordItem]
