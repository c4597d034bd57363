"""Drop the chunks' ``search_vector`` column, its trigger and its GIN index.

The keyword side reads BM25 postings (migration 0002) and highlights parse only the returned
chunks, so nothing reads the column any more; writing it cost a tsvector per chunk on every
insert and a GIN index over every version.
"""

from django.db import migrations

DROP = """
DROP INDEX IF EXISTS rag_chunk_search_gin;
DROP TRIGGER IF EXISTS rag_chunk_search_vector ON rag_chunk;
DROP FUNCTION IF EXISTS rag_chunk_search_vector();
"""


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("rag", "0002_keyword_index")]

    operations = [
        # Not reversible: the column would come back empty (a re-index refills nothing).
        migrations.RunPython(drop_trigger, migrations.RunPython.noop),
        migrations.RemoveField(model_name="chunk", name="search_vector"),
    ]
