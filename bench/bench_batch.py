"""A 1,000-task batch through the product vs a bare `requests` loop posting the same 10 chunks.

    .venv/bin/python bench/bench_batch.py                    # the product on SQLite in a temp dir
    .venv/bin/python bench/bench_batch.py --database-url postgres://postgres@127.0.0.1:5432/bench_batch
    .venv/bin/python bench/bench_batch.py --pin              # the stand-in on a CPU of its own
    .venv/bin/python bench/bench_batch.py --phases           # where the product's time goes

The stand-in upstream runs in a process of its own (bench/_standin.py: the whole Django app with its own
SQLite database, served over real HTTP by a threaded wsgiref server on a free 127.0.0.1 port), as the
real upstream is a service of its own. `--pin` also gives it a CPU of its own, as the real upstream runs
on other machines: the stand-in on the last CPU, this process and its PostgreSQL backend on the others
(on a 2-CPU machine that leaves the product and its database one CPU, less than a deployment has, so it
is not the default). The product's figure is `batch_submit` (tasks/prompt_templates/batches.py: creating
the batch, its task rows and chunks, reserving budget) followed by the worker's loop in this process
(`chunks_drain`, tasks/submission/workers.py: posting ≤ 100 tasks per call and recording each outcome);
bench_sending.py times the two apart, with workers in processes of their own.
The baseline posts
the same task bodies, with the tag the product adds to an untagged task, in the same chunks with
`requests` and does nothing else. Both are warmed up, then run in alternation, each going first in every
other round; the figures are medians, and the ratio is also given as the median of each round's ratio
(the two runs of a round are neighbours in time, so drift of a shared machine cancels). The product's
time ends when the worker's loop returns; the check that every task was submitted comes after. The plan (CSV
parsing and checking each task with the builder's form) is timed separately. A --database-url database
is dropped and created afresh.
"""

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _builder_setup import make_catalog, make_credential, make_member, setup_django
from _postgres import ensure_database

CHUNK = 100


def serve():
    """Start the stand-in in its own process; return the process and its base URL."""
    standin = subprocess.Popen(  # noqa: S603 (our own script, by absolute path)
        [sys.executable, str(Path(__file__).with_name("_standin.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return standin, standin.stdout.readline().strip()


def pin(standin_pid: int) -> str:
    """The stand-in on the last CPU; this process and its database backend on the others. Returns what
    was done, for the report."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    if len(cpus) < 2:
        return "not pinned (fewer than 2 CPUs)"
    ours, theirs = set(cpus[:-1]), {cpus[-1]}
    os.sched_setaffinity(standin_pid, theirs)
    os.sched_setaffinity(0, ours)
    done = f"stand-in on CPU {cpus[-1]}, this process on CPU {', '.join(map(str, sorted(ours)))}"
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        try:
            os.sched_setaffinity(backend, ours)
            done += " with its PostgreSQL backend"
        except OSError as exc:  # another user's process: the server may run elsewhere
            done += f" (its PostgreSQL backend not pinned: {exc.strerror})"
    return done


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", default="", help="the product's database (default: SQLite)")
    parser.add_argument("--pin", action="store_true", help="the stand-in on a CPU of its own")
    parser.add_argument(
        "--phases", action="store_true", help="time the product's calls and what is around them"
    )
    args = parser.parse_args()
    setup_django(ensure_database(args.database_url, fresh=True) if args.database_url else "")
    import requests

    from tasks.prompt_templates import batches
    from tasks.prompt_templates.services import template_create
    from tasks.submission.workers import chunks_drain

    make_catalog()
    user = make_member()
    standin, url = serve()
    placement = pin(standin.pid) if args.pin else "every process on every CPU"
    base_url = f"{url}/sandbox/apis/v1/dataforseo"
    credential = make_credential(base_url)
    fields = {"user_prompt": "Tell me about {{city}}", "model_name": "gpt-4.1"}
    template = template_create(name="Bench", provider="chat_gpt", fields=fields, user=user)
    rows = "city\n" + "".join(f"City number {i}\n" for i in range(args.tasks))

    start = time.perf_counter()
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=rows, models=["gpt-4.1"], credential=credential
    )
    plan_seconds = time.perf_counter() - start
    assert plan.ok, plan.errors[:3]

    # Baseline: the same bodies, the same chunks, a bare requests loop.
    session = requests.Session()
    post_url = f"{base_url}/ai_optimization/chat_gpt/llm_responses/task_post"
    headers = {"Authorization": "Bearer sandbox-key", "Content-Type": "application/json"}

    def as_sent(bodies: list[dict]) -> list[dict]:
        """The bodies as the product sends them: a task without a tag carries the product's own (§7)."""
        return [
            body if body.get("tag") else {**body, "tag": f"aisa-dashboard:{uuid.uuid4()}"} for body in bodies
        ]

    def bare_loop(bodies: list[dict]) -> None:
        for i in range(0, len(bodies), CHUNK):
            chunk = json.dumps(bodies[i : i + CHUNK])
            reply = session.post(post_url, data=chunk, headers=headers, timeout=60)
            assert reply.status_code == 200 and reply.json()["tasks_error"] == 0

    def product(bodies: list[dict], key: str):
        one_plan = dataclasses.replace(plan, bodies=bodies)
        batch = batches.batch_submit(plan=one_plan, credential=credential, user=user, idempotency_key=key)
        chunks_drain(worker="bench")
        return batch

    def check(batch, count: int) -> None:
        submitted = batch.tasks.filter(status="submitted").count()
        assert submitted == count, f"{submitted} of {count} submitted"

    # Warm-up, both sides: a connection to the stand-in and every code path run once.
    bare_loop(as_sent(plan.bodies[:1]))
    check(product(plan.bodies[:1], "warm-up"), 1)

    calls = _time_calls() if args.phases else []
    bare_runs, product_runs, phases = [], [], []

    def run_bare() -> None:
        bodies = as_sent(plan.bodies)
        start = time.perf_counter()
        bare_loop(bodies)
        bare_runs.append(time.perf_counter() - start)

    def run_product(run: int) -> None:
        calls.clear()
        start = time.perf_counter()
        batch = product(plan.bodies, f"bench-{run}")
        product_runs.append(time.perf_counter() - start)
        check(batch, len(plan.bodies))
        if calls:
            phases.append(_phases(start, start + product_runs[-1], calls))

    for run in range(args.rounds):
        # Which goes first alternates, so a machine (or a growing database) that slows down during the
        # benchmark weighs on both sides alike.
        if run % 2:
            run_product(run)
            run_bare()
        else:
            run_bare()
            run_product(run)
    standin.stdin.close()
    standin.wait(timeout=10)

    bare, ours = statistics.median(bare_runs), statistics.median(product_runs)
    paired = statistics.median(p / b for p, b in zip(product_runs, bare_runs, strict=True))
    calls = len(range(0, args.tasks, CHUNK))
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{args.tasks} tasks, {calls} upstream calls, median of {args.rounds} rounds")
    print(f"  the product's database: {database}; {placement}")
    print(f"  plan (CSV + form check per task): {plan_seconds:.3f} s")
    print(f"  bare requests loop:               {bare:.3f} s  (runs: {_runs(bare_runs)})")
    print(f"  product batch_submit + worker:    {ours:.3f} s  (runs: {_runs(product_runs)})")
    print(f"  ratio product / bare:             {ours / bare:.2f}  (median of each round's: {paired:.2f})")
    if phases:
        medians = [statistics.median(phase) * 1000 for phase in zip(*phases, strict=True)]
        print(
            "  product, median ms: before the first call {:.0f}, in calls {:.0f}, between calls {:.0f}, "
            "after the last {:.0f}".format(*medians)
        )


def _time_calls() -> list[tuple[float, float]]:
    """--phases: record when each of the product's task_post calls starts and ends (in this benchmark
    only: the client's method is wrapped)."""
    from tasks.upstream.clients import LLMResponsesClient

    calls: list[tuple[float, float]] = []
    task_post = LLMResponsesClient.task_post

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return task_post(self, *args, **kwargs)
        finally:
            calls.append((started, time.perf_counter()))

    LLMResponsesClient.task_post = timed
    return calls


def _phases(start: float, end: float, calls: list[tuple[float, float]]) -> tuple[float, ...]:
    """Before the first call, in calls, between calls, after the last: they add up to the run."""
    calls = sorted(calls)
    between = sum(later[0] - earlier[1] for earlier, later in itertools.pairwise(calls))
    return calls[0][0] - start, sum(e - s for s, e in calls), between, end - calls[-1][1]


def _runs(seconds: list[float]) -> str:
    return " ".join(f"{value:.3f}" for value in seconds)


if __name__ == "__main__":
    main()
