"""Monitors for tests: a template of 3 prompts on 2 models (one ChatGPT, one Claude) by default."""

from datetime import UTC, date, datetime, time

from django.utils.text import slugify

from tasks.models import Monitor, PromptTemplate, PromptTemplateVersion
from tasks.monitors.scheduler import monitor_schedule

ROWS = "city\nParis\nBerlin\nRome\n"


def make_prompt_version(name: str = "Capitals") -> PromptTemplateVersion:
    template = PromptTemplate.objects.create(name=name, provider="chat_gpt")
    return PromptTemplateVersion.objects.create(
        template=template, number=1, fields={"user_prompt": "What is the best hotel in {{city}}?"}
    )


def make_monitor(
    *, credential, owner=None, name="Hotels", now=None, claude_credential=None, **fields
) -> Monitor:
    version = fields.pop("template_version", None) or make_prompt_version(f"{name} prompts")
    defaults = {
        "template_version": version,
        "rows_text": ROWS,
        "targets": [
            {"model_name": "gpt-4.1", "credential_id": credential.pk},
            {"model_name": "claude-3-5-haiku", "credential_id": (claude_credential or credential).pk},
        ],
        "cadence": Monitor.Cadence.DAILY,
        "time_of_day": time(9, 0),
        "time_zone": "UTC",
    }
    defaults.update(fields)
    monitor = Monitor.objects.create(
        name=name, slug=slugify(name), tag=slugify(name), owner=owner, **defaults
    )
    monitor_schedule(monitor=monitor, now=now or datetime(2026, 1, 1, tzinfo=UTC))
    monitor.refresh_from_db()
    return monitor


def interval_off_the_old_epoch(first_day: date) -> int:
    """An "every N days" interval that counting from 2000-01-01 (before migration 0027) would not put on
    `first_day`: a test of the first run fails, whatever the day, if the days are counted from there."""
    return next(n for n in (7, 5, 3) if (first_day - date(2000, 1, 1)).days % n)
