"""Imports every domain's models so that Alembic and relationship strings see all tables."""

from __future__ import annotations

from app.audit import models as audit_models  # noqa: F401
from app.cme import models as cme_models  # noqa: F401
from app.core.db import Base
from app.jobs import models as jobs_models  # noqa: F401
from app.matching import models as matching_models  # noqa: F401
from app.partners import models as partners_models  # noqa: F401
from app.security import models as security_models  # noqa: F401
from app.submissions import models as submissions_models  # noqa: F401

metadata = Base.metadata
