"""HTTP for LA case systems: the routers of each CME use case (`app/cme/routes/`), under /v1/cme.

Every route is scoped to the caller's LA inside the query: another LA's ids answer 404 and never appear
in lists; partners other than LAs, and LA credentials without an officer, get 403.
"""

from __future__ import annotations

from app.cme.routes import candidates, due, records, removals, rights, subject_access_requests, transfers
from app.core.errors import problem_responses
from app.security.dependencies import authenticated_router

router = authenticated_router(tags=["cme"], responses=problem_responses(403))
# In the order of the operations in the OpenAPI document. Each router carries the /v1/cme prefix itself, so
# the route a request reaches (`scope["route"]`, whose template labels logs and metrics) has the full path.
for routes in (candidates, records, removals, rights, transfers, due, subject_access_requests):
    router.include_router(routes.router)
