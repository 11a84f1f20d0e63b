"""Imports every domain's models so that Alembic and relationship strings see all tables."""

from __future__ import annotations

from app.core.db import Base

metadata = Base.metadata
