"""Data chat: datasets, the SQL guard and the read-only executor (NL to SQL builds on them).

``register_dataset`` and ``table`` define datasets in code; ``services.run_sql`` runs SQL.
"""

from automate_datachat.registry import register_dataset, table

__all__ = ["register_dataset", "table"]
