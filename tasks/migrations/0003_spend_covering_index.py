"""A PostgreSQL covering index for the spend page and budget checks: every column they group or sum is
in the index, so a month of tasks is read with an index-only scan instead of one heap page per task.

Not declared on the model (Django cannot express INCLUDE portably); SQLite skips it.
"""

from django.db import migrations

CREATE = """
CREATE INDEX CONCURRENTLY IF NOT EXISTS task_spend_covering ON tasks_task (created_at)
INCLUDE (spend, spend_is_final, submitted_by_id, provider, model_name, credential_id, template_version_id, tag)
"""
DROP = "DROP INDEX CONCURRENTLY IF EXISTS task_spend_covering"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY: no write lock on a large table

    dependencies = [("tasks", "0002_roles")]

    operations = [migrations.RunPython(create_index, drop_index)]
