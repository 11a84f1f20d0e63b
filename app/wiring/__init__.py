"""Composition: the one place above the domains that gathers them (decision 0021).

`models` imports every domain's tables for Alembic and metadata, `jobs` is the job handler and tick table,
`commands` the CLI's operational sub-commands that build the app. `app.main` (the FastAPI app) and
`app.cli` (the `cme` command) sit beside it at the top. Nothing below `app` imports from here except those.
"""
