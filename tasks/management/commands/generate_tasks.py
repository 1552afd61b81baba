"""Generate many realistic tasks for demos and benchmarks (never against a real team's database).

    python manage.py generate_tasks --count 1000000

Distribution (seeded, reproducible): a year of tasks with more in recent months and on weekdays;
ChatGPT about two thirds, Claude one third, each over its real models; ~88% completed, ~6% failed,
~3% unknown and the rest active (only in the last hour, as in real life); about 70% tagged, over a few
hundred tags with a long tail; each tag has a handful of prompts whose answers drift between a few
variants (so tag timelines show changes); web-search answers carry citations over a list of domains;
costs follow the stand-in's prices (queued: $0.0102 at post, final = base + money_spent). Events and
labels are written for a sample of tasks; the raw upstream JSON only for that sample too.
A demo brand set ("Demo brands": Acme ours, the other BRANDS competitors, each with its .com domain) reads
every tag; some web-search answers cite those domains, and each tagged answer's mentions are extracted
as it is written (tasks/visibility/), then rolled up with the spend.

On PostgreSQL rows go in with COPY; elsewhere with bulk_create in batches.
"""

import json
import random
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from itertools import accumulate

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from tasks.models import (
    Batch,
    Brand,
    BrandMention,
    BrandSet,
    BrandSetTag,
    Credential,
    PromptTemplate,
    PromptTemplateVersion,
    Task,
    TaskEvent,
    TaskLabel,
)
from tasks.spend.rollup import rollup_time_zone, spend_rollup
from tasks.visibility.extraction import Matcher
from tasks.visibility.mentions import brand_rules, mention_rows
from tasks.visibility.rollup import visibility_rollup

MODELS = {
    "chat_gpt": [
        ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", 40),
        ("gpt-4.1", "gpt-4.1-2025-04-14", 20),
        ("gpt-4o", "gpt-4o-2024-11-20", 15),
        ("gpt-5-mini", "gpt-5-mini-2025-08-07", 15),
        ("o3-mini", "o3-mini-2025-01-31", 10),
    ],
    "claude": [
        ("claude-sonnet-4-0", "claude-sonnet-4-20250514", 50),
        ("claude-3-5-haiku", "claude-3-5-haiku-20241022", 30),
        ("claude-opus-4-1", "claude-opus-4-1-20250805", 20),
    ],
}
SUBJECTS = [
    "amusement parks",
    "electric bikes",
    "CRM software",
    "running shoes",
    "coffee machines",
    "VPN services",
    "project management tools",
    "online banks",
    "meal kits",
    "hotel chains",
    "SEO agencies",
    "password managers",
    "noise-cancelling headphones",
    "language apps",
    "home insurance",
    "cloud hosting",
    "budget airlines",
]
PLACES = ["France", "Germany", "the US", "Spain", "Japan", "Brazil", "the UK", "Italy", "Canada", "Australia"]
ASKS = [
    "Which {s} in {p} are most recommended?",
    "What are the best {s} in {p} right now?",
    "Compare the top three {s} for a buyer in {p}.",
    "Is {brand} a good choice among {s} in {p}?",
    "How relevant is the {s} business in {p} now?",
]
BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne"]
DOMAINS = [
    "wikipedia.org",
    "reddit.com",
    "forbes.com",
    "techradar.com",
    "nytimes.com",
    "statista.com",
    "trustpilot.com",
    "youtube.com",
    "g2.com",
    "capterra.com",
    "lemonde.fr",
    "bbc.co.uk",
    "theverge.com",
    "wired.com",
    "investopedia.com",
    "nerdwallet.com",
    "tripadvisor.com",
    "medium.com",
]
SENTENCES = [
    "{b} is frequently mentioned as a leader, with strong reviews for reliability.",
    "Prices vary widely; most buyers in {p} compare at least three options before deciding.",
    "Recent coverage highlights {b}'s customer support and a growing market share.",
    "Analysts expect the {s} market in {p} to keep growing by a few percent a year.",
    "Smaller players such as {b2} compete on price and niche features.",
    "Independent tests rank {b2} slightly ahead on value for money.",
    "Regulation in {p} has pushed providers to be clearer about fees and data use.",
    "For most people, **{b}** remains the safest default; power users may prefer {b2}.",
]
STATUSES = [("completed", 88), ("failed", 6), ("unknown", 3), ("pending", 3)]
LABELS = ["baseline", "q3-review", "competitor", "client-x", "weekly", "audit", "keep", "investigate"]

COLUMNS = [
    "id",
    "provider",
    "mode",
    "credential_id",
    "submitted_by_id",
    "template_version_id",
    "batch_id",
    "idempotency_key",
    "request_body",
    "user_prompt",
    "model_name",
    "resolved_model_name",
    "tag",
    "note",
    "upstream_task_id",
    "status",
    "status_code",
    "status_message",
    "estimated_charge",
    "charged",
    "cost",
    "money_spent",
    "spend",
    "spend_is_final",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "web_search_used",
    "result",
    "answer_text",
    "reasoning_text",
    "citations",
    "fan_out_queries",
    "poll_count",
    "next_poll_at",
    "created_at",
    "submitted_at",
    "completed_at",
    "updated_at",
]
JSON_COLUMNS = {"request_body", "result", "citations", "fan_out_queries"}
DEMO_BRAND_SET = "Demo brands"
MENTION_COLUMNS = [
    "task_id",
    "brand_set_id",
    "brand_id",
    "created_at",
    "tag",
    "provider",
    "model_name",
    "spend",
    "mention_count",
    "position",
    "in_first_paragraph",
    "citation_count",
    "citation_rank",
]
CHARGE = Decimal("0.0102")
BASE = Decimal("0.0002")


class Command(BaseCommand):
    help = "Generate realistic tasks (default a million) for demos and benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1_000_000)
        parser.add_argument("--batch-size", type=int, default=20_000)
        parser.add_argument("--users", type=int, default=25)
        parser.add_argument("--tags", type=int, default=400)
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument(
            "--sample", type=float, default=0.01, help="Share of tasks with events and labels."
        )
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        started = time.monotonic()
        world = self._world(rng, options)
        count, size = options["count"], options["batch_size"]
        with _historical_dates():
            made = self._generate(rng, world, options, count, size, started)
        if connection.vendor == "postgresql":
            # Every table filled here, the brands' mentions included: on a server without autovacuum, a table
            # never analysed gets plans made with no statistics (the tag page's mention query took seconds
            # instead of milliseconds on a fresh bench database). VACUUM too, where it can run (not inside a
            # transaction): until a vacuum marks the new pages all-visible, an index-only scan reads the table
            # for every row, so spend's covering index is no help (home's this-month query read 23,000 table
            # pages, 128 ms instead of 27, on a fresh 1 M-task database).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE")
        # The new tasks have past dates: rebuild the spend rollup from the first day they landed on.
        rollup = spend_rollup(since=timezone.localtime(world["start"], rollup_time_zone()).date())
        BrandSet.objects.filter(pk=world["brand_set"]).update(
            rolled_through=None, extracted_at=timezone.now()
        )
        visibility_rollup(brand_set_ids=[world["brand_set"]])
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {made:,} tasks in {time.monotonic() - started:.1f}s "
                f"(spend rolled up through {rollup.through})."
            )
        )

    def _generate(self, rng, world, options, count, size, started) -> int:
        made = 0
        while made < count:
            n = min(size, count - made)
            rows = [self._task_row(rng, world, options) for _ in range(n)]
            sample = [row for row in rows if rng.random() < options["sample"]]
            for row in sample:
                row["result"] = json.dumps(_raw_result(row))
            mentions = self._mentions(world, rows)
            with transaction.atomic():
                self._insert(rows)
                self._events_and_labels(rng, sample)
                self._insert_mentions(mentions)
            made += n
            rate = made / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"{made:,} tasks ({rate:,.0f}/s)")
        return made

    # --- The world the tasks live in --------------------------------------------------------------------

    def _world(self, rng, options) -> dict:
        User = get_user_model()
        users = list(User.objects.filter(username__startswith="gen-").order_by("pk")[: options["users"]])
        for i in range(len(users), options["users"]):
            users.append(User.objects.create_user(username=f"gen-{i:03d}", password=None))
        credentials = list(Credential.objects.filter(name__startswith="Generated ").order_by("pk"))
        if not credentials:
            for name, kind in (
                ("Generated AIsa", "aisa"),
                ("Generated DataForSEO", "dataforseo"),
                ("Generated AIsa 2", "aisa"),
            ):
                credential = Credential(name=name, kind=kind, base_url="https://example.invalid/")
                credential.set_secret("generated-secret")
                credential.save()
                credentials.append(credential)
        versions = []
        for i in range(8):
            template, _ = PromptTemplate.objects.get_or_create(
                name=f"Generated template {i}", defaults={"provider": "chat_gpt" if i % 3 else "claude"}
            )
            version, _ = PromptTemplateVersion.objects.get_or_create(
                template=template, number=1, defaults={"fields": {}}
            )
            versions.append(version.pk)
        batches = [Batch.objects.create(name=f"Generated batch {i}").pk for i in range(30)]
        tags = []
        for i in range(options["tags"]):
            subject, place = SUBJECTS[i % len(SUBJECTS)], PLACES[(i // len(SUBJECTS)) % len(PLACES)]
            team = ["team-a", "team-b", "seo", "brand", "research"][i % 5]
            tag = f"{team}:{subject.replace(' ', '-')}/{place.replace(' ', '-').lower()}"
            if i >= len(SUBJECTS) * len(PLACES):
                tag += f"-{i}"
            prompts = []
            for j in range(rng.randint(1, 5)):
                brand, brand2 = rng.sample(BRANDS, 2)
                ask = ASKS[(i + j) % len(ASKS)].format(s=subject, p=place, brand=brand)
                variants = [_answer(rng, subject, place, brand, brand2) for _ in range(rng.randint(2, 4))]
                prompts.append((ask, variants))
            tags.append((tag, prompts))
        brand_set = _demo_brand_set([tag for tag, _ in tags])
        # Zipf-like weights: a few tags hold many tasks, most hold a few hundred. Cumulative, as
        # rng.choices would otherwise add them up again for every row (the same draws either way).
        tag_weights = list(accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(tags))))
        now = timezone.now()
        return {
            "users": [u.pk for u in users],
            "user_weights": list(accumulate(1 / (rank + 1) ** 0.7 for rank in range(len(users)))),
            "credentials": [c.pk for c in credentials],
            "versions": versions,
            "batches": batches,
            "tags": tags,
            "tag_weights": tag_weights,
            "now": now,
            "start": now - timedelta(days=options["days"]),
            "brand_set": brand_set.pk,
            "matcher": Matcher(brand_rules(brand_set.pk)),
            # Its own stream, so the tasks' other columns stay what they were before it existed.
            "brand_rng": random.Random(options["seed"] + 1),
        }

    def _task_row(self, rng, world, options) -> dict:
        now = world["now"]
        provider = "chat_gpt" if rng.random() < 0.66 else "claude"
        models = MODELS[provider]
        model_name, resolved, _ = rng.choices(models, weights=[m[2] for m in models])[0]
        # More tasks recently: the square root pulls dates towards now.
        age = timedelta(days=options["days"]) * (rng.random() ** 1.6)
        created = now - age
        status = rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES])[0]
        if status == "pending" and age > timedelta(hours=1):
            status = "completed"
        if status == "pending" and rng.random() < 0.3:
            status = "submitted"
        tagged = rng.random() < 0.7
        if tagged:
            tag, prompts = rng.choices(world["tags"], cum_weights=world["tag_weights"])[0]
            prompt, variants = rng.choice(prompts)
            # Answers drift slowly: the variant depends on the month, with some noise.
            answer = variants[(created.month + (rng.random() < 0.2)) % len(variants)]
        else:
            tag = ""
            brand, brand2 = rng.sample(BRANDS, 2)
            subject, place = rng.choice(SUBJECTS), rng.choice(PLACES)
            prompt = rng.choice(ASKS).format(s=subject, p=place, brand=brand)
            answer = _answer(rng, subject, place, brand, brand2)
        web_search = rng.random() < 0.35
        task_id = uuid.uuid4()
        live = rng.random() < 0.1
        row = {
            "id": task_id,
            "provider": provider,
            "mode": "live" if live else "task_post",
            "credential_id": rng.choice(world["credentials"]),
            "submitted_by_id": rng.choices(world["users"], cum_weights=world["user_weights"])[0],
            "template_version_id": rng.choice(world["versions"]) if rng.random() < 0.25 else None,
            "batch_id": rng.choice(world["batches"]) if rng.random() < 0.15 else None,
            "idempotency_key": None,
            "request_body": json.dumps(
                {
                    "user_prompt": prompt,
                    "model_name": model_name,
                    "tag": tag or f"aisa-dashboard:{task_id}",
                    "web_search": web_search,
                }
            ),
            "user_prompt": prompt,
            "model_name": model_name,
            "resolved_model_name": "",
            "tag": tag,
            "note": "",
            "upstream_task_id": f"{created:%m%d%H%M}-{rng.randrange(10**4):04d}-0612-0000-{task_id.hex[:12]}",
            "status": status,
            "status_code": 20100,
            "status_message": "Task Created.",
            "estimated_charge": CHARGE,
            "charged": CHARGE,
            "cost": None,
            "money_spent": None,
            "spend": CHARGE,
            "spend_is_final": False,
            "input_tokens": None,
            "output_tokens": None,
            "reasoning_tokens": None,
            "web_search_used": None,
            "result": None,
            "answer_text": "",
            "reasoning_text": "",
            "citations": "[]",
            "fan_out_queries": "[]",
            "poll_count": 0,
            "next_poll_at": None,
            "created_at": created,
            "submitted_at": created + timedelta(milliseconds=300),
            "completed_at": None,
            "updated_at": created,
        }
        if status == "completed":
            output = rng.randint(80, 900)
            money = (Decimal(output) * Decimal("0.0000016") + Decimal(rng.randint(50, 900)) / 10**6).quantize(
                Decimal("0.000001")
            )
            cost = (Decimal("0.0006") if live else BASE) + money
            citations = []
            if web_search:
                for domain in rng.sample(DOMAINS, rng.randint(0, 5)):
                    citations.append(
                        {
                            "title": f"{domain.split('.')[0].title()} on {prompt[:40]}",
                            "url": f"https://www.{domain}/article/{rng.randrange(10**6)}",
                            "domain": domain,
                            "start_index": None,
                            "end_index": None,
                            "text": "",
                        }
                    )
            done = created + timedelta(seconds=rng.randint(3, 600))
            row.update(
                status_code=20000,
                status_message="Ok.",
                resolved_model_name=resolved,
                cost=cost,
                charged=cost if live else CHARGE,
                money_spent=money,
                spend=cost,
                spend_is_final=True,
                input_tokens=rng.randint(20, 400),
                output_tokens=output,
                reasoning_tokens=rng.randint(0, 800) if "o3" in model_name or "gpt-5" in model_name else 0,
                web_search_used=web_search,
                answer_text=answer,
                citations=json.dumps(citations),
                fan_out_queries=json.dumps([prompt.lower()[:60]] if web_search else []),
                completed_at=done,
                updated_at=done,
            )
        elif status == "failed":
            code, message = rng.choice(
                [
                    (40501, "Invalid Field: 'model_name'."),
                    (40200, "Payment Required."),
                    (40401, "Task Not Found."),
                ]
            )
            row.update(
                status_code=code,
                status_message=message,
                charged=Decimal("0"),
                spend=Decimal("0"),
                spend_is_final=True,
                completed_at=created,
            )
        elif status == "pending":
            row.update(
                status_code=40602,
                status_message="Task In Queue.",
                poll_count=rng.randint(1, 5),
                next_poll_at=now + timedelta(seconds=30),
            )
        elif status == "unknown":
            row.update(
                status_code=None, status_message="The reply to task_post was lost.", upstream_task_id=None
            )
        return row

    def _mentions(self, world, rows: list[dict]) -> list[BrandMention]:
        """Some web-search answers cite a brand's domain; every tagged answer's mentions, extracted."""
        brand_rng, mentions = world["brand_rng"], []
        for row in rows:
            if row["status"] != "completed" or not row["tag"]:
                continue
            citations = json.loads(row["citations"])
            if row["web_search_used"] and brand_rng.random() < 0.5:
                brand = brand_rng.choice(BRANDS).lower()
                at = brand_rng.randint(0, len(citations))
                citations.insert(at, _citation(f"{brand}.com", row["user_prompt"], brand_rng))
                row["citations"] = json.dumps(citations)
            task = {**row, "citations": citations}
            mentions += mention_rows(brand_set_id=world["brand_set"], matcher=world["matcher"], task=task)
        return mentions

    def _insert_mentions(self, mentions: list[BrandMention]) -> None:
        if connection.vendor == "postgresql":
            sql = f"COPY tasks_brandmention ({', '.join(MENTION_COLUMNS)}) FROM STDIN"
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                for m in mentions:
                    copy.write_row([getattr(m, c) for c in MENTION_COLUMNS])
            return
        BrandMention.objects.bulk_create(mentions, batch_size=2000)

    # --- Writing --------------------------------------------------------------------------------------

    def _insert(self, rows: list[dict]) -> None:
        if connection.vendor == "postgresql":
            sql = f"COPY tasks_task ({', '.join(COLUMNS)}) FROM STDIN"
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row([row[c] for c in COLUMNS])
            return
        objects = []
        for row in rows:
            fields = {
                k: (json.loads(v) if k in JSON_COLUMNS and v is not None else v) for k, v in row.items()
            }
            objects.append(Task(**fields))
        Task.objects.bulk_create(objects, batch_size=2000)

    def _events_and_labels(self, rng, sample: list[dict]) -> None:
        events, labels = [], []
        for row in sample:
            at = row["created_at"]
            kinds = [("created", None, "", None), ("posted", 20100, "Task Created.", CHARGE)]
            if row["status"] == "completed":
                kinds += [("polled", 40602, "Task In Queue.", None)] * rng.randint(0, 3)
                kinds += [
                    ("polled", 20000, "Ok.", None),
                    ("completed", 20000, f"Final cost ${row['cost']:.6f}.", row["cost"] - CHARGE),
                ]
            elif row["status"] == "failed":
                kinds = [
                    ("created", None, "", None),
                    ("failed", row["status_code"], row["status_message"], None),
                ]
            elif row["status"] == "unknown":
                kinds = [("created", None, "", None), ("unknown", None, row["status_message"], None)]
            else:
                kinds += [("polled", 40602, "Task In Queue.", None)]
            for step, (kind, code, message, change) in enumerate(kinds):
                event = TaskEvent(
                    task_id=row["id"], kind=kind, status_code=code, message=message, cost_change=change
                )
                event.created_at = at + timedelta(seconds=step * 5)
                events.append(event)
            for name in rng.sample(LABELS, rng.randint(0, 2)):
                labels.append(TaskLabel(task_id=row["id"], name=name, created_by_id=row["submitted_by_id"]))
        TaskEvent.objects.bulk_create(events, batch_size=5000)
        TaskLabel.objects.bulk_create(labels, batch_size=5000, ignore_conflicts=True)


@contextmanager
def _historical_dates():
    """Let generated rows keep their dates over the year: auto_now(_add) would stamp them all "now"."""
    fields = [Task._meta.get_field(name) for name in ("created_at", "updated_at")]
    fields.append(TaskEvent._meta.get_field("created_at"))
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for field in fields:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def _demo_brand_set(tags: list[str]) -> BrandSet:
    """The demo brand set (made once), reading every generated tag."""
    brand_set, created = BrandSet.objects.get_or_create(
        name=DEMO_BRAND_SET, defaults={"description": "Made by generate_tasks."}
    )
    if created:
        Brand.objects.bulk_create(
            [
                Brand(brand_set=brand_set, name=name, is_ours=name == "Acme", domains=f"{name.lower()}.com")
                for name in BRANDS
            ]
        )
    BrandSetTag.objects.bulk_create(
        [BrandSetTag(brand_set=brand_set, tag=tag) for tag in tags], ignore_conflicts=True
    )
    return brand_set


def _citation(domain: str, prompt: str, rng) -> dict:
    return {
        "title": f"{domain.split('.')[0].title()} on {prompt[:40]}",
        "url": f"https://www.{domain}/article/{rng.randrange(10**6)}",
        "domain": domain,
        "start_index": None,
        "end_index": None,
        "text": "",
    }


def _answer(rng, subject: str, place: str, brand: str, brand2: str) -> str:
    picked = rng.sample(SENTENCES, rng.randint(3, 6))
    text = " ".join(s.format(s=subject, p=place, b=brand, b2=brand2) for s in picked)
    if rng.random() < 0.4:
        text += f"\n\n- {brand}: well reviewed\n- {brand2}: cheaper\n- Others: mixed"
    return text


def _raw_result(row: dict) -> dict:
    return {
        "id": row["upstream_task_id"],
        "status_code": row["status_code"],
        "status_message": row["status_message"],
        "cost": float(row["cost"] or 0),
        "result": [
            {
                "model_name": row["resolved_model_name"],
                "input_tokens": row["input_tokens"],
                "output_tokens": row["output_tokens"],
                "money_spent": float(row["money_spent"] or 0),
                "items": [{"type": "message", "sections": [{"type": "text", "text": row["answer_text"]}]}],
            }
        ]
        if row["status"] == "completed"
        else None,
    }
