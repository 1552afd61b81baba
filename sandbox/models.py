"""What the stand-in remembers between requests. Everything lives in the database, never in memory, because
the site runs under several gunicorn workers and tests talk to it from another process."""

from django.db import models
from django.utils import timezone

MONEY = {"max_digits": 12, "decimal_places": 6}


class SandboxTask(models.Model):
    """A task the stand-in accepted (task_post) or answered (live).

    The answer is computed when the task is accepted (it is deterministic) and served once `ready_at` passes.
    """

    class Mode(models.TextChoices):
        TASK_POST = "task_post", "task_post"
        LIVE = "live", "live"

    id = models.CharField(primary_key=True, max_length=36)
    provider = models.CharField(max_length=20)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    account = models.CharField(max_length=120, help_text="Who posted it: 'key:<digest>' or 'login:<login>'.")
    data = models.JSONField(help_text="The task as posted, plus api/function/se: echoed back as `data`.")
    result = models.JSONField(help_text="result[0] of the finished task.")
    charged = models.DecimalField(**MONEY, help_text="Cost when accepted (prepayment + base fee).")
    cost = models.DecimalField(**MONEY, help_text="Final cost: base fee + money_spent.")
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField()
    fetched_at = models.DateTimeField(
        null=True, blank=True, help_text="First collected by task_get or a delivered postback."
    )
    callbacks_claimed_at = models.DateTimeField(null=True, blank=True)
    pingback_outcome = models.CharField(max_length=200, blank=True)
    postback_outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "provider", "ready_at"], name="sandboxtask_ready")]

    def __str__(self) -> str:
        return f"{self.provider} {self.mode} {self.id}"

    @property
    def is_ready(self) -> bool:
        return timezone.now() >= self.ready_at


class SandboxFault(models.Model):
    """A failure the stand-in will inject into the next `remaining` matching requests (see sandbox.faults)."""

    class Mode(models.TextChoices):
        HANG = "hang", "Hang, then answer"
        HTTP500 = "http500", "HTTP 500"
        MALFORMED = "malformed", "Truncated JSON"
        RATE_LIMIT = "rate_limit", "HTTP 429"
        INTERNAL_ERROR = "internal_error", "Task status 50000"
        RESET = "reset", "Close the connection without a reply"
        TASK_REFUSED = "task_refused", "Some tasks of a task_post refused"

    mode = models.CharField(max_length=20, choices=Mode.choices)
    function = models.CharField(max_length=20, blank=True, help_text="Empty: any function.")
    provider = models.CharField(max_length=20, blank=True, help_text="Empty: any provider.")
    remaining = models.PositiveIntegerField(default=1)
    seconds = models.FloatField(default=30.0, help_text="How long `hang` sleeps.")
    retry_after = models.PositiveIntegerField(default=1, help_text="Retry-After of `rate_limit`.")
    status_code = models.PositiveIntegerField(default=50000, help_text="The task status of `task_refused`.")
    prompt_contains = models.CharField(
        max_length=200,
        blank=True,
        help_text="`task_refused`: tasks whose user_prompt contains this (empty: any).",
    )
    position = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="`task_refused`: the task at this index of the call, from 0 (empty: any).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.mode} on {self.function or 'any'} ×{self.remaining}"


class SandboxRequest(models.Model):
    """One request the stand-in's API received: lets tests count what the product actually sent."""

    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    route = models.CharField(max_length=20, help_text="aisa or dataforseo")
    provider = models.CharField(max_length=20, blank=True)
    function = models.CharField(max_length=20, blank=True)
    account = models.CharField(max_length=120, blank=True)
    http_status = models.PositiveSmallIntegerField()
    tasks_in_body = models.PositiveIntegerField(null=True, blank=True)
    fault = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.http_status}"
