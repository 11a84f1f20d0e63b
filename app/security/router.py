"""Public key discovery (unauthenticated: public keys only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.security.service_key import ServiceSignerDep

router = APIRouter(tags=["security"])


@router.get("/.well-known/jwks.json", operation_id="jwks")
def jwks(signer: ServiceSignerDep) -> dict[str, Any]:
    """The service's public signing keys (JWKS); `kid` is the RFC 7638 thumbprint."""
    return signer.jwks()
