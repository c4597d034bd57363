"""``AUTOMATE_DATACHAT`` settings with defaults (see docs/datachat.md "Settings")."""

from __future__ import annotations

from automate_core.conf import AppSettings

datachat_settings = AppSettings(
    "AUTOMATE_DATACHAT",
    defaults={
        # The database role data chat queries run as: LOGIN, SELECT on the backing relations
        # only, default_transaction_read_only on. Created and granted by `manage.py
        # datachat_role` (needs CREATEROLE and ownership of the tables), and after each
        # `migrate` when MANAGE_ROLE is on.
        "ROLE": "automate_datachat",
        # Set the role up after each migrate: True, False, or None for "with the embedded
        # Postgres only" (no DATABASE_URL). Production: False, and run datachat_role.
        "MANAGE_ROLE": None,
        # Its password, when the server asks for one (the embedded Postgres trusts its socket).
        "ROLE_PASSWORD": "",
        # A full connection URL for the role instead (another host, a read replica, a pooler).
        # None: the default database's host, port and name with ROLE / ROLE_PASSWORD.
        "DATABASE_URL": None,
        # Per statement, and for a transaction left open (a client gone mid-fetch), in ms.
        "STATEMENT_TIMEOUT_MS": 5000,
        "IDLE_IN_TRANSACTION_TIMEOUT_MS": 10000,
        # Rows a query may return when its dataset sets no row_cap; and the largest row_cap a
        # dataset may set.
        "DEFAULT_ROW_CAP": 1000,
        "MAX_ROW_CAP": 50000,
        # Relations that admin-defined datasets may expose (code-registered datasets may expose
        # any): Django models as "app_label.ModelName", tables or views by name. The role is
        # granted SELECT on exactly these and on the relations of registered datasets.
        "ALLOWED_MODELS": [],
        "ALLOWED_TABLES": [],
        # Tables wholly owned by one tenant (no tenant column): {"tenant-slug": ["table", ...]}.
        # Only the tenant named here may mark them tenant_owned in a dataset.
        "TENANT_OWNED_TABLES": {},
        # Sessions: kept this long after their last message, then deleted.
        "SESSION_TTL_SECONDS": 7 * 24 * 3600,
        # Rows of a result stored with its message (the API answer carries all of them).
        "MESSAGE_ROWS": 200,
        # NL→SQL: the model (a model config slug or model id; None: the tenant's default),
        # how many similar examples and past turns go into the prompt.
        "MODEL": None,
        "PROMPT_EXAMPLES": 5,
        "HISTORY_TURNS": 5,
        # Offer the demo shop dataset ("demo-shop", automate_datachat.demo) to the tenants with
        # the slugs "demo" and "demo-b" (its tables exist once `manage.py datachat_demo` ran).
        "DEMO_DATASET": True,
        # API rate limits, per API key (or user): asking calls the model, SQL only reads.
        "ASK_RATE_LIMIT": "60/min",
        "SQL_RATE_LIMIT": "600/min",
    },
)
