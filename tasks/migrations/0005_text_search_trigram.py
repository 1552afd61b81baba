"""PostgreSQL trigram indexes for the task list's text search (`q` matches prompt and answer with
Django's `icontains`, i.e. `UPPER(col::text) LIKE UPPER('%word%')`): without them a rare word scans every row.

The indexes are on the same expressions the queries use. Not declared on the model (they are
PostgreSQL-only expression indexes with an operator class); SQLite skips this migration. When the
database role may not create the pg_trgm extension, the indexes are skipped with a message and search
still works, only slower.
"""

from django.db import migrations

INDEXES = {
    "task_prompt_trgm": 'UPPER("user_prompt"::text)',
    "task_answer_trgm": 'UPPER("answer_text"::text)',
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        try:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as exc:  # noqa: BLE001 - a missing privilege must not stop the deployment
            print(f"\n  Skipped the text-search indexes: could not enable pg_trgm ({exc}).")
            return
        for name, expression in INDEXES.items():
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tasks_task USING gin (({expression}) gin_trgm_ops)"
            )
        # Expression indexes get statistics only from ANALYZE; without them the planner misjudges common
        # words (measured: 9 s instead of 56 ms on a million tasks).
        cursor.execute("ANALYZE tasks_task")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY: no write lock on a large table

    dependencies = [("tasks", "0004_history_indexes")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
