"""The product's records: credentials, the model catalog, prompt templates, tasks and their history,
budgets and the audit log.

Money is USD in Decimal(12, 6). `Task.spend` is the figure every spend and budget query sums: the
estimate while a task is being sent, the charge at post once the upstream accepted it, the final cost
once known, and zero when the upstream refused it. Services keep it current.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from uuid_utils.compat import uuid7

from tasks import crypto
from tasks.templatetags.spend_format import ratio_percent

MONEY = {"max_digits": 12, "decimal_places": 6}


class Provider(models.TextChoices):
    CHAT_GPT = "chat_gpt", "ChatGPT"
    CLAUDE = "claude", "Claude"
    GEMINI = "gemini", "Gemini"
    PERPLEXITY = "perplexity", "Perplexity"


class Credential(models.Model):
    class Kind(models.TextChoices):
        AISA = "aisa", "AIsa gateway (Bearer token)"
        DATAFORSEO = "dataforseo", "DataForSEO direct (login + password)"

    DEFAULT_BASE_URLS = {
        Kind.AISA: "https://api.aisa.one/apis/v1/dataforseo",
        Kind.DATAFORSEO: "https://api.dataforseo.com/v3",
    }

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    base_url = models.URLField(
        max_length=300,
        blank=True,
        help_text="Leave empty for the provider's public URL. Point it at the stand-in to test.",
    )
    login = models.CharField(max_length=200, blank=True, help_text="DataForSEO login (direct only).")
    secret_encrypted = models.TextField(editable=False)
    secret_hint = models.CharField(max_length=8, editable=False)
    secret_fingerprint = models.CharField(max_length=16, editable=False)
    price_multiplier = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        default=Decimal("1"),
        help_text="What this route charges relative to DataForSEO's list price (AIsa may bill 2x).",
    )
    calls_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The most task_post calls a minute this key may make (AIsa: the key's own limit). "
        "Empty: 2,000 for DataForSEO direct, no limit of the product's own for AIsa.",
    )
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    last_verification_ok = models.BooleanField(null=True, blank=True)
    last_verification_message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_credential"
            )
        ]

    def __str__(self) -> str:
        ending = f", {self.secret_ending}" if self.secret_hint else ""
        return f"{self.name} ({self.get_kind_display()}{ending})"

    def __repr__(self) -> str:
        return f"<Credential {self.pk} {self.name!r} fingerprint={self.secret_fingerprint}>"

    @property
    def secret_ending(self) -> str:
        """The secret's last four characters after "…", or "" for a secret of 8 characters or fewer."""
        return f"…{self.secret_hint}" if self.secret_hint else ""

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or self.DEFAULT_BASE_URLS[self.kind]).rstrip("/")

    def set_secret(self, secret: str) -> None:
        """Encrypt the token (AIsa) or password (DataForSEO) under CREDENTIAL_KEYS."""
        self.secret_encrypted = crypto.encrypt(secret)
        self.secret_hint = crypto.hint(secret)  # empty for a secret of 8 characters or fewer
        self.secret_fingerprint = crypto.fingerprint(secret)

    def get_secret(self) -> str:
        """The plaintext secret; raises crypto.CredentialKeyError when the keys cannot decrypt it."""
        return crypto.decrypt(self.secret_encrypted)


class ProviderModel(models.Model):
    """One entry of a provider's catalog, from the free `models` endpoint."""

    provider = models.CharField(max_length=20, choices=Provider.choices)
    model_name = models.CharField(max_length=100)
    reasoning = models.BooleanField(default=False)
    web_search_supported = models.BooleanField(default=False)
    task_post_supported = models.BooleanField(default=True)
    is_listed = models.BooleanField(default=True, help_text="Present in the latest fetch.")
    fetched_at = models.DateTimeField()

    class Meta:
        ordering = ["provider", "model_name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model_name"], name="unique_provider_model")
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.model_name}"


class PromptTemplate(models.Model):
    name = models.CharField(max_length=150, unique=True)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PromptTemplateVersion(models.Model):
    """An immutable snapshot of a template's form values; every edit adds one."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    fields = models.JSONField(help_text="The builder's form values, variables unfilled.")
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="unique_template_version")]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.number}"


class Batch(models.Model):
    """Many tasks submitted together (template × rows of variables × models)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=200, blank=True)
    template_version = models.ForeignKey(
        PromptTemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    task_count = models.PositiveIntegerField(default=0)
    row_count = models.PositiveIntegerField(
        default=0, help_text="Rows of variables; each ran once per model."
    )
    model_names = models.JSONField(default=list, blank=True, help_text="The models each row ran on.")
    estimated_charge = models.DecimalField(**MONEY, default=Decimal("0"))
    plan_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        editable=False,
        help_text="The checked plan's fingerprint (every task, the credential): the same batch sent again "
        "from a new page is asked about first (prompt_templates/repeats.py). Empty before it was stored.",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        # The id's end: its start is the time it was made (UUIDv7), alike for batches of one minute.
        return self.name or f"Batch {str(self.id)[-8:]}"


class Task(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"  # committed locally, not yet sent
        SENDING = "sending", "Sending"  # claimed by a worker; its POST may be in flight
        SUBMITTED = "submitted", "Submitted"  # accepted upstream (20100)
        PENDING = "pending", "Pending"  # upstream says handed / in queue
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown (reply lost)"

    ACTIVE_STATUSES = (Status.QUEUED, Status.SENDING, Status.SUBMITTED, Status.PENDING)
    FINAL_STATUSES = (Status.COMPLETED, Status.FAILED)

    class Mode(models.TextChoices):
        QUEUED = "task_post", "Queue (task_post)"
        LIVE = "live", "Live"

    # Time-ordered (UUIDv7): a new row's id goes at the end of the primary-key index, not at a random
    # page of it, so writing a chunk of tasks dirties a few pages instead of one per row.
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.QUEUED)
    # Every index is written at each task's insert and again when its outcome is recorded, so there is
    # none that another one already serves: task_credential_created and task_user_created lead with
    # these two keys, and the unique keys are constraints (on PostgreSQL a unique field would also get a
    # varchar_pattern_ops index, for LIKE queries these keys never see).
    credential = models.ForeignKey(Credential, on_delete=models.PROTECT, related_name="tasks", db_index=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="submitted_tasks",
        db_index=False,
    )
    template_version = models.ForeignKey(
        PromptTemplateVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
    )
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    chunk = models.ForeignKey(
        "SendChunk",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
        help_text="The chunk a worker sends it in (tasks/submission/chunks.py).",
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    variables = models.JSONField(
        null=True, blank=True, help_text="The template variables' values that filled it (a batch's row)."
    )

    request_body = models.JSONField(help_text="The task object exactly as sent upstream.")
    user_prompt = models.CharField(max_length=500, help_text="Copied from the request, for search.")
    model_name = models.CharField(max_length=100, help_text="As requested.")
    resolved_model_name = models.CharField(max_length=100, blank=True)
    tag = models.CharField(max_length=255, blank=True)
    note = models.TextField(blank=True)

    upstream_task_id = models.CharField(max_length=128, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    status_code = models.IntegerField(null=True, blank=True)
    status_message = models.TextField(blank=True)

    estimated_charge = models.DecimalField(**MONEY, default=Decimal("0"))
    charged = models.DecimalField(**MONEY, null=True, blank=True, help_text="Charge at post.")
    cost = models.DecimalField(**MONEY, null=True, blank=True, help_text="Final cost.")
    money_spent = models.DecimalField(**MONEY, null=True, blank=True)
    spend = models.DecimalField(**MONEY, default=Decimal("0"))
    spend_is_final = models.BooleanField(default=False)

    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    web_search_used = models.BooleanField(null=True, blank=True)

    result = models.JSONField(null=True, blank=True, help_text="The raw upstream task object.")
    answer_text = models.TextField(blank=True)
    reasoning_text = models.TextField(blank=True)
    citations = models.JSONField(default=list, blank=True)
    fan_out_queries = models.JSONField(default=list, blank=True)

    poll_count = models.PositiveIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="task_created"),
            models.Index(fields=["status", "-created_at"], name="task_status_created"),
            models.Index(fields=["provider", "-created_at"], name="task_provider_created"),
            models.Index(fields=["model_name", "-created_at"], name="task_model_created"),
            # Covering on PostgreSQL, so a tag's page and the tags index read only the index.
            models.Index(
                fields=["tag", "-created_at"],
                include=["status", "provider", "model_name", "spend", "spend_is_final"],
                name="task_tag_created",
            ),
            models.Index(fields=["spend", "id"], name="task_spend_id"),  # the list sorted by cost
            models.Index(fields=["submitted_by", "-created_at"], name="task_user_created"),
            models.Index(fields=["credential", "-created_at"], name="task_credential_created"),
            # The few tasks whose spend may still change, for the spend page's "still provisional"
            # (covering on PostgreSQL: the panel sums their spend from the index alone).
            models.Index(
                fields=["status"],
                include=["spend"],
                condition=Q(spend_is_final=False),
                name="task_provisional",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="task_idempotency_key_unique"),
            models.UniqueConstraint(fields=["upstream_task_id"], name="task_upstream_task_id_unique"),
        ]
        permissions = [
            ("view_spend", "Can review spend"),
            ("manage_budgets", "Can set budgets"),
            ("manage_credentials", "Can manage credentials"),
            ("manage_people", "Can invite people and change roles"),
            ("view_audit", "Can read the audit log"),
            ("resolve_task", "Can resolve a task whose reply was lost"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.model_name}: {self.user_prompt[:40]}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class TaskEvent(models.Model):
    """Append-only history of a task: every upstream exchange and every local change."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        POSTED = "posted", "Posted"
        POLLED = "polled", "Polled"
        CALLBACK = "callback", "Callback received"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Error"
        UNKNOWN = "unknown", "Reply lost"
        EDITED = "edited", "Edited"
        RECONCILED = "reconciled", "Reconciled"  # an upstream id found for a task whose reply was lost
        SETTLED = "settled", "Spend settled"  # provisional spend made final by the settlement rule

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status_code = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    cost_change = models.DecimalField(**MONEY, null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["task", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.status_code or ''} {self.message[:60]}"


class TaskLabel(models.Model):
    """A local label on a task (several per task), beside the single upstream `tag`."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=60)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["task", "name"], name="unique_task_label")]
        indexes = [models.Index(fields=["name"], name="tasklabel_name")]

    def __str__(self) -> str:
        return self.name


class Budget(models.Model):
    """A monthly spend limit for the team, one person or one tag."""

    class Scope(models.TextChoices):
        TEAM = "team", "Team"
        PERSON = "person", "Person"
        TAG = "tag", "Tag"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    tag = models.CharField(max_length=255, blank=True)
    monthly_limit = models.DecimalField(**MONEY)
    warn_ratio = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0.8"))
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "tag"]
        constraints = [
            models.UniqueConstraint(fields=["scope"], condition=Q(scope="team"), name="one_team_budget"),
            models.UniqueConstraint(
                fields=["user"], condition=Q(scope="person"), name="one_budget_per_person"
            ),
            models.UniqueConstraint(fields=["tag"], condition=Q(scope="tag"), name="one_budget_per_tag"),
        ]

    def __str__(self) -> str:
        if self.scope == self.Scope.PERSON:
            return f"Budget for {self.user}"
        if self.scope == self.Scope.TAG:
            return f"Budget for tag {self.tag}"
        return "Team budget"

    @property
    def sentence_name(self) -> str:
        """The budget in a sentence: "the team budget", "the budget of alice", "the budget of tag “x”"."""
        if self.scope == self.Scope.PERSON:
            return f"the budget of {self.user}"
        if self.scope == self.Scope.TAG:
            return f"the budget of tag “{self.tag}”"
        return "the team budget"


class AuditEntry(models.Model):
    """Who changed which credential, budget, role or person; never a secret value."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_repr}"


class SpendDay(models.Model):
    """Pre-aggregated spend of one settled day (tasks created that day in settings.TIME_ZONE), for the
    spend page: one row for the day's whole (`dimension` "total") and one row per group of each
    breakdown, with only that breakdown's column set (the others are null or empty).

    Rows per breakdown rather than per combination of all of them: with a few hundred tags most tasks
    of a day differ in at least one column, so combinations would barely shrink the data. Written only
    by tasks.spend_rollup; the foreign keys follow deletions the way Task's do (SET_NULL), so a
    deleted person's spend moves to "(nobody)" here as on the tasks.
    """

    class Dimension(models.TextChoices):
        TOTAL = "total", "Whole day"
        PERSON = "person", "Person"
        PROVIDER = "provider", "Provider"
        MODEL = "model", "Model"
        CREDENTIAL = "credential", "Credential"
        TAG = "tag", "Tag"
        TEMPLATE = "template", "Template version"

    day = models.DateField()
    dimension = models.CharField(max_length=20, choices=Dimension.choices)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(max_length=20, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    template_version = models.ForeignKey(
        PromptTemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tag = models.CharField(max_length=255, blank=True)
    spend = models.DecimalField(**MONEY, default=Decimal("0"))
    provisional = models.DecimalField(
        **MONEY, default=Decimal("0"), help_text="The part of `spend` not final yet."
    )
    task_count = models.PositiveIntegerField(default=0)
    provisional_count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(null=True, blank=True, help_text="The group's first task that day.")
    last_at = models.DateTimeField(null=True, blank=True, help_text="The group's last task that day.")

    class Meta:
        ordering = ["day", "dimension"]
        indexes = [models.Index(fields=["day", "dimension"], name="spendday_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.dimension}: {self.spend}"


class SpendRollup(models.Model):
    """The rollup's watermark (a single row): SpendDay holds every day up to `through`, bucketed in
    `time_zone`. The spend page reads SpendDay for those days and tasks for later ones."""

    through = models.DateField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    next_run_at = models.DateTimeField(
        null=True, blank=True, help_text="When the daily job is next due; one chain of jobs keeps it."
    )
    updated_at = models.DateTimeField(auto_now=True)
    weeks_through = models.DateField(
        null=True, blank=True, help_text="SpendWeek holds every week (Monday to Sunday) ending by this day."
    )

    def __str__(self) -> str:
        return f"Spend rolled up through {self.through or 'nothing yet'} ({self.time_zone})"


class OneTimePassword(models.Model):
    """A password an Admin set for a person (invited, or a new one): while this row exists the person
    must choose their own before anything else, and it stops working at `expires_at`. Any later password
    change, by any route, removes it (tasks/accounts.py)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="one_time_password"
    )
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"One-time password of user {self.user_id}, until {self.expires_at:%Y-%m-%d %H:%M}"


class SendChunk(models.Model):
    """Up to 100 tasks of one submission, sent upstream in one POST by one worker
    (tasks/submission/chunks.py; docs/task-lifecycle.md, "Sending").

    planned → sending (claimed with a lease; `post_started_at` committed just before the POST) → sent,
    rejected or unknown. A sending chunk whose lease ran out goes back to planned if its POST never
    started, and to unknown if it may have (it is never sent again).
    """

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        REJECTED = "rejected", "Rejected"
        UNKNOWN = "unknown", "Unknown (reply lost)"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    credential = models.ForeignKey(Credential, on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    mode = models.CharField(max_length=20, choices=Task.Mode.choices, default=Task.Mode.QUEUED)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="chunks")
    task_count = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PLANNED)
    not_before = models.DateTimeField(help_text="Not claimed before this (a rate limit or a retry delay).")
    claimed_by = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    post_started_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["state", "not_before"], name="sendchunk_state_not_before")]

    def __str__(self) -> str:
        return f"Chunk {str(self.id)[-8:]} ({self.task_count} tasks, {self.state})"


class SendingLimit(models.Model):
    """A credential's rate-limit state, shared by every worker (GCRA: `next_slot_at` is the theoretical
    arrival time of the next call); `limited_until` is set by a 429 / 40202 and its Retry-After."""

    credential = models.OneToOneField(Credential, on_delete=models.CASCADE, related_name="sending_limit")
    next_slot_at = models.DateTimeField(null=True, blank=True)
    limited_until = models.DateTimeField(null=True, blank=True)
    limited_message = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Sending limit of credential {self.credential_id}"


class SendingWorker(models.Model):
    """A worker that sends chunks, and when it was last seen doing so (the queue page)."""

    name = models.CharField(max_length=200, unique=True)
    last_seen = models.DateTimeField()
    chunks_sent = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return self.name


class JobSchedule(models.Model):
    """When a self-re-arming periodic job is next due (one row per job): the job re-enqueues itself only
    with a claim on this row, so enqueueing it again at every worker start never starts a second chain."""

    name = models.CharField(max_length=60, unique=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: next at {self.next_run_at or 'not planned'}"


# --- Visibility (tasks/visibility/, docs/visibility.md) ---------------------------------------------------


class BrandSet(models.Model):
    """Named brands (ours and competitors) whose mentions are extracted from the answers of its tags."""

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    rolled_through = models.DateField(
        null=True,
        blank=True,
        help_text="VisibilityDay holds this set's days up to here (tasks/visibility/rollup.py).",
    )
    extracted_at = models.DateTimeField(
        null=True, blank=True, help_text="When its mentions were last recomputed in full."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Brand(models.Model):
    brand_set = models.ForeignKey(BrandSet, on_delete=models.CASCADE, related_name="brands")
    name = models.CharField(max_length=100)
    is_ours = models.BooleanField(default=False)
    aliases = models.TextField(
        blank=True, help_text="One a line; a line starting with re: is a regular expression."
    )
    domains = models.TextField(blank=True, help_text="One a line, e.g. acme.com (subdomains count).")

    class Meta:
        ordering = ["-is_ours", "name"]
        constraints = [models.UniqueConstraint(fields=["brand_set", "name"], name="unique_brand_name")]

    def __str__(self) -> str:
        return self.name


class BrandSetTag(models.Model):
    """A tag whose answers a brand set reads (a monitor's tasks carry the monitor's tag)."""

    brand_set = models.ForeignKey(BrandSet, on_delete=models.CASCADE, related_name="tag_links")
    tag = models.CharField(max_length=255)

    class Meta:
        ordering = ["tag"]
        constraints = [models.UniqueConstraint(fields=["brand_set", "tag"], name="unique_brand_set_tag")]
        indexes = [models.Index(fields=["tag"], name="brandsettag_tag")]

    def __str__(self) -> str:
        return f"{self.brand_set} ← {self.tag}"


class BrandMention(models.Model):
    """What one answer says about one brand of a set, extracted once (tasks/visibility/extraction.py).

    The row with no brand is the answer itself (every analysed answer has one: the denominator of
    visibility, its citation count and cost); a brand has a row only when it is mentioned or cited.
    The task's tag, provider, model, day and spend are copied so analytics never read tasks.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+", db_index=False)
    brand_set = models.ForeignKey(BrandSet, on_delete=models.CASCADE, related_name="+", db_index=False)
    brand = models.ForeignKey(
        Brand, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(help_text="The task's.")
    tag = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=20)
    model_name = models.CharField(max_length=100)
    spend = models.DecimalField(**MONEY, default=Decimal("0"))
    mention_count = models.PositiveIntegerField(default=0)
    position = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 = mentioned first.")
    in_first_paragraph = models.BooleanField(default=False)
    citation_count = models.PositiveIntegerField(
        default=0, help_text="Brand row: its domains' citations; answer row: all citations."
    )
    citation_rank = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["brand_set", "created_at"], name="mention_set_created"),
            models.Index(fields=["tag", "created_at"], name="mention_tag_created"),
            # A tag's newest answers for one set (the answer-change marks): issue 16, 1 M tasks.
            models.Index(
                fields=["tag", "brand_set", "created_at"],
                condition=models.Q(brand__isnull=True),
                name="mention_answer_tag_created",
            ),
            # Covering on PostgreSQL: the answers behind a brand's figure, counted and paged from the index.
            models.Index(
                fields=["brand", "created_at"],
                include=["brand_set", "mention_count", "in_first_paragraph", "citation_count", "task"],
                name="mention_brand_created",
            ),
            models.Index(fields=["task"], name="mention_task"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "brand_set"], condition=Q(brand__isnull=True), name="one_answer_row_per_set"
            ),
            models.UniqueConstraint(
                fields=["task", "brand"], condition=Q(brand__isnull=False), name="one_mention_row_per_brand"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} {self.brand_id or 'answer'}: {self.mention_count}"


class VisibilityDay(models.Model):
    """BrandMention summed per day (settings.TIME_ZONE), set, brand, provider and model: rows with an
    empty `tag` are the whole set's, the others one tag's (tasks/visibility/rollup.py)."""

    day = models.DateField()
    brand_set = models.ForeignKey(BrandSet, on_delete=models.CASCADE, related_name="+", db_index=False)
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    per_tag = models.BooleanField(default=False)
    tag = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=20)
    model_name = models.CharField(max_length=100)
    rows = models.PositiveIntegerField(default=0, help_text="Answers (answer rows) or mentioning answers.")
    mentioned = models.PositiveIntegerField(default=0)
    mentions = models.PositiveIntegerField(default=0)
    position_sum = models.PositiveIntegerField(default=0)
    first_paragraph = models.PositiveIntegerField(default=0)
    cited = models.PositiveIntegerField(default=0)
    citations = models.PositiveIntegerField(default=0)
    spend = models.DecimalField(**MONEY, default=Decimal("0"))

    class Meta:
        indexes = [
            models.Index(fields=["brand_set", "per_tag", "day"], name="visday_set_day"),
            models.Index(fields=["tag", "day"], name="visday_tag_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.brand_set_id} {self.brand_id or 'answers'}"


# --- Monitors (docs/monitors.md): prompts run on a schedule, their runs and their alerts. ---


class Monitor(models.Model):
    """A prompt template version (with its rows) or one builder request, run on several models on a cadence.

    `next_run_at` is the next slot due (UTC), kept by the scheduler; the due monitors are one indexed query.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    class Cadence(models.TextChoices):
        HOURLY = "hourly", "Every hour"
        DAILY = "daily", "Every day at a time"
        WEEKDAYS = "weekdays", "On chosen weekdays"
        EVERY_N_DAYS = "every_n_days", "Every N days"
        CRON = "cron", "Cron expression"

    name = models.CharField(max_length=150, unique=True)
    slug = models.SlugField(max_length=150, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.TextField(blank=True)
    template_version = models.ForeignKey(
        PromptTemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rows_text = models.TextField(
        blank=True, help_text="CSV rows of the template's variables, as batches take them."
    )
    request_fields = models.JSONField(null=True, blank=True, help_text="One builder request's form values.")
    request_provider = models.CharField(max_length=20, choices=Provider.choices, blank=True)
    targets = models.JSONField(default=list, help_text='[{"model_name": …, "credential_id": …}, …]')
    tag = models.CharField(max_length=255)
    labels = models.JSONField(default=list, blank=True)
    cadence = models.CharField(max_length=20, choices=Cadence.choices, default=Cadence.DAILY)
    time_of_day = models.TimeField(null=True, blank=True)
    minute = models.PositiveSmallIntegerField(default=0)
    weekdays = models.JSONField(default=list, blank=True, help_text="0 = Monday … 6 = Sunday.")
    interval_days = models.PositiveSmallIntegerField(null=True, blank=True)
    cron = models.CharField(max_length=120, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    cap_per_run = models.DecimalField(**MONEY, null=True, blank=True)
    cap_per_month = models.DecimalField(**MONEY, null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["next_run_at"], name="monitor_due", condition=Q(state="active")),
        ]

    def __str__(self) -> str:
        return self.name


class MonitorSlugAlias(models.Model):
    """A slug a monitor had before a rename: its old addresses lead to it (tasks/monitors/slugs.py).

    One monitor per old slug (the last that had it); a monitor taking the slug as its own removes the alias.
    """

    slug = models.SlugField(max_length=150, unique=True)
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="slug_aliases")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class MonitorRun(models.Model):
    """One run of a monitor: a batch through the durable sending, or the reason it was skipped.

    Unique per (monitor, slot): however many schedulers tick at once, a slot makes one run.
    """

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CATCH_UP = "catch_up", "Catch-up"
        MANUAL = "manual", "Run now"
        RETRY = "retry", "Retry"

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        SENT = "sent", "Sent"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="runs")
    slot = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SCHEDULED)
    missed_slots = models.PositiveIntegerField(default=0, help_text="Slots a catch-up run stands for.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PLANNED)
    reason = models.TextField(blank=True)
    batch = models.OneToOneField(
        Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="monitor_run"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A retry of a failed run by hand: one per failed run (a double submit finds the first).
    retry_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retry"
    )
    # "Run now": the one-time key of the page the button was pressed on; a second press of the same page
    # (a double click with scripts off, a resent form, a second tab) finds this run instead of a new one.
    request_key = models.CharField(max_length=32, null=True, blank=True, editable=False)
    estimated_charge = models.DecimalField(**MONEY, default=Decimal("0"))
    task_count = models.PositiveIntegerField(default=0)
    completed_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    unknown_count = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When a tick last wrote what its tasks count: a sent run past the newest ones is read in turns by it.
    refreshed_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-slot"]
        constraints = [
            models.UniqueConstraint(fields=["monitor", "slot"], name="monitor_run_one_per_slot"),
            models.UniqueConstraint(fields=["request_key"], name="monitor_run_request_key_unique"),
        ]
        indexes = [
            models.Index(fields=["state", "created_at"], name="monitor_run_state"),
            models.Index(fields=["state", "refreshed_at"], name="monitor_run_refreshed"),
        ]

    def __str__(self) -> str:
        return f"{self.monitor} at {self.slot:%Y-%m-%d %H:%M} UTC"


class AlertDestination(models.Model):
    """Where a monitor's or a budget's alerts go: email addresses, a JSON webhook or a Slack webhook.
    A webhook URL is a secret (it carries its token): stored encrypted like a credential's."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook (JSON)"
        SLACK = "slack", "Slack incoming webhook"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    monitor = models.ForeignKey(
        Monitor, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_destinations"
    )
    budget = models.ForeignKey(
        Budget, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_destinations"
    )
    emails = models.CharField(max_length=500, blank=True)
    url_encrypted = models.TextField(blank=True, editable=False)
    url_hint = models.CharField(max_length=120, blank=True, editable=False)
    alert_kinds = models.JSONField(
        default=list, blank=True, help_text="The alert kinds it receives; empty: every kind."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.emails or self.url_hint}"

    def set_url(self, url: str) -> None:
        from urllib.parse import urlsplit

        self.url_encrypted = crypto.encrypt(url)
        self.url_hint = (urlsplit(url).hostname or "")[:120]

    def get_url(self) -> str:
        return crypto.decrypt(self.url_encrypted) if self.url_encrypted else ""


class Alert(models.Model):
    """Something a person should hear about; `key` makes each one once (a slot, a budget's month)."""

    class Kind(models.TextChoices):
        RUN_FAILED = "run_failed", "Run failed"
        RUN_SKIPPED = "run_skipped", "Run skipped"
        BUDGET_WARNING = "budget_warning", "Budget warning (its threshold, 80 % by default)"
        BUDGET_REACHED = "budget_reached", "Budget reached"
        TASKS_UNKNOWN = "tasks_unknown", "Tasks stuck unknown"
        TEST = "test", "Test"

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    monitor = models.ForeignKey(
        Monitor, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    budget = models.ForeignKey(Budget, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    run = models.ForeignKey(
        MonitorRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.title}: {self.message[:80]}"

    @property
    def title(self) -> str:
        """The kind as a heading (an email's subject); a budget warning names its budget's own threshold,
        not the 80 % most budgets keep."""
        if self.kind == self.Kind.BUDGET_WARNING and self.budget_id is not None:
            return f"Budget {ratio_percent(self.budget.warn_ratio)} used"
        return self.get_kind_display()


class AlertDelivery(models.Model):
    """One alert to one destination; retried with backoff until sent or given up (shown to admins)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    destination = models.ForeignKey(
        AlertDestination, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    target = models.CharField(max_length=500)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="alert_delivery_due")]

    def __str__(self) -> str:
        return f"{self.alert} → {self.target}: {self.state}"


class SpendWeek(models.Model):
    """The sum of a week's SpendDay rows (Monday to Sunday), per breakdown group: a long period reads
    one row per group and week for its whole weeks instead of seven (tasks.spend.rollup keeps them equal
    to their days; the spend page uses a week only up to the rollup's watermark)."""

    week = models.DateField(help_text="The Monday the week starts on.")
    dimension = models.CharField(max_length=20, choices=SpendDay.Dimension.choices)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(max_length=20, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    template_version = models.ForeignKey(
        PromptTemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tag = models.CharField(max_length=255, blank=True)
    spend = models.DecimalField(**MONEY, default=Decimal("0"))
    provisional = models.DecimalField(**MONEY, default=Decimal("0"))
    task_count = models.PositiveIntegerField(default=0)
    provisional_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["week", "dimension"]
        indexes = [models.Index(fields=["week", "dimension"], name="spendweek_week")]

    def __str__(self) -> str:
        return f"week of {self.week} {self.dimension}: {self.spend}"


class TagMonth(models.Model):
    """The spend rollup's per-tag rows of one month summed (issue 16: the tags index at 1 M tasks read
    ~125,000 SpendDay rows). Rebuilt from SpendDay in the same transaction as each of the month's days
    (tasks.spend.rollup), so it always equals the month's SpendDay tag rows; the tags index reads it only
    for months wholly within the rollup's watermark."""

    month = models.DateField(help_text="The month's first day.")
    tag = models.CharField(max_length=255)
    spend = models.DecimalField(**MONEY, default=Decimal("0"))
    task_count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["month", "tag"]
        constraints = [models.UniqueConstraint(fields=["month", "tag"], name="tagmonth_month_tag")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.tag}: {self.spend}"
