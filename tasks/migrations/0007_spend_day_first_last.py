"""Each rollup row keeps its group's first and last task of the day, so the tags index can read first and
last runs from the rollup instead of every tagged task.

Rows rolled up before this have neither, so the rollup starts again: its time zone is cleared, which the
spend pages read as "nothing rolled up" (they read tasks meanwhile) and the next rollup run (at worker
start, then hourly) as a reason to rebuild every day.
"""

from django.db import migrations, models


def restart_rollup(apps, schema_editor):
    apps.get_model("tasks", "SpendRollup").objects.update(time_zone="")


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0006_spend_rollup'),
    ]

    operations = [
        migrations.AddField(
            model_name='spendday',
            name='first_at',
            field=models.DateTimeField(blank=True, help_text="The group's first task that day.", null=True),
        ),
        migrations.AddField(
            model_name='spendday',
            name='last_at',
            field=models.DateTimeField(blank=True, help_text="The group's last task that day.", null=True),
        ),
        migrations.RunPython(restart_rollup, migrations.RunPython.noop),
    ]
