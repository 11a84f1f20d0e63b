"""Who may send which kind of submission to whom (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from app.submissions.schemas import SubmissionKind

HEALTH_SENDERS = frozenset({"local_health_board", "gp_practice"})


@dataclass(frozen=True, slots=True)
class PartnerView:
    """What routing needs to know of a partner."""

    id: str
    kind: str
    active: bool
    is_pilot_la: bool


@dataclass(frozen=True, slots=True)
class RouteDecision:
    allowed: bool
    reason: str | None = None
    # For education registers: the LA whose register the records join.
    register_la: str | None = None
    # Refused only because the payload leaves out a member this sender must fill in (a 422 naming it).
    missing_field: str | None = None


def _refuse(reason: str) -> RouteDecision:
    return RouteDecision(allowed=False, reason=reason)


def _missing_recipient(reason: str) -> RouteDecision:
    return RouteDecision(allowed=False, reason=reason, missing_field="recipient")


def decide_route(kind: SubmissionKind, sender: PartnerView, recipient: PartnerView | None) -> RouteDecision:
    """Reg 4 routes health lists to pilot LAs; registers belong to the LA that keeps them."""
    if recipient is not None and (recipient.kind != "local_authority" or not recipient.active):
        return _refuse("The recipient must be an active local authority.")
    if kind is SubmissionKind.health_register:
        if sender.kind not in HEALTH_SENDERS:
            return _refuse("Only local health boards and GP practices send health registers.")
        if recipient is None:
            return _missing_recipient("A health register must name its recipient, a pilot local authority.")
        if not recipient.is_pilot_la:
            return _refuse("A health register must be addressed to a pilot local authority.")
        return RouteDecision(allowed=True)
    if kind is SubmissionKind.school_roll and sender.kind == "independent_school":
        if recipient is None:
            return _missing_recipient(
                "An independent school's roll must name the local authority it is sent to as its recipient."
            )
        return RouteDecision(allowed=True, register_la=recipient.id)
    if sender.kind != "local_authority":
        return _refuse(f"Only local authorities send {kind.value} submissions.")
    if recipient is not None and recipient.id != sender.id:
        return _refuse("A local authority sends its own registers; the recipient must be itself or absent.")
    return RouteDecision(allowed=True, register_la=sender.id)
