"""Django set up on a benchmark's own database, so benchmarks never touch a dev or test one.

The database lives on the server ``DATABASE_URL`` names, or else on the embedded Postgres under
``AUTOMATE_VAR_DIR`` (``./var``); it is created on first use. Call :func:`setup_django` before
importing anything that needs Django.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]


def database_url(name: str) -> str:
    """The URL of database ``name`` on the configured (or embedded) server, created if needed."""
    import psycopg

    base = os.environ.get("DATABASE_URL")
    if not base:
        from automate_site import embedded

        var_dir = Path(os.environ.get("AUTOMATE_VAR_DIR", REPO_ROOT / "var")).resolve()
        base = embedded.postgres_url(var_dir)
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {name}")
    return urlsplit(base)._replace(path="/" + name).geturl()


def setup_django(name: str) -> None:
    """Point Django at database ``name`` and set it up."""
    os.environ["DATABASE_URL"] = database_url(name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automate_site.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()
