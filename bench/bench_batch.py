"""A 1,000-task batch through the product vs a bare `requests` loop posting the same 10 chunks.

    .venv/bin/python bench/bench_batch.py                    # the product on SQLite in a temp dir
    .venv/bin/python bench/bench_batch.py --database-url postgres://postgres@127.0.0.1:5432/bench_batch

The stand-in upstream runs in a process of its own (bench/_standin.py: the whole Django app with its own
SQLite database, served over real HTTP by a threaded wsgiref server on a free 127.0.0.1 port), as the real
upstream is a service of its own. The product's figure is `tasks.batches.batch_submit`: creating the batch
and its task rows, reserving budget, posting ≤ 100 tasks per call and recording each outcome. The baseline
posts the same task bodies in the same chunks with `requests` and does nothing else. Both are warmed up,
then run in alternation; the figures are medians. The plan (CSV parsing and checking each task with the
builder's form) is timed separately. A --database-url database is dropped and created afresh.
"""

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default="", help="the product's database (default: SQLite)")
    args = parser.parse_args()
    setup_django(ensure_database(args.database_url, fresh=True) if args.database_url else "")
    import requests

    from tasks import batches
    from tasks.prompt_templates import template_create

    make_catalog()
    user = make_member()
    standin, url = serve()
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

    def bare_loop(bodies: list[dict]) -> None:
        for i in range(0, len(bodies), CHUNK):
            chunk = json.dumps(bodies[i : i + CHUNK])
            reply = session.post(post_url, data=chunk, headers=headers, timeout=60)
            assert reply.status_code == 200 and reply.json()["tasks_error"] == 0

    def product(bodies: list[dict], key: str) -> None:
        one_plan = dataclasses.replace(plan, bodies=bodies)
        batch = batches.batch_submit(plan=one_plan, credential=credential, user=user, idempotency_key=key)
        submitted = batch.tasks.filter(status="submitted").count()
        assert submitted == len(bodies), f"{submitted} of {len(bodies)} submitted"

    # Warm-up, both sides: a connection to the stand-in and every code path run once.
    bare_loop(plan.bodies[:1])
    product(plan.bodies[:1], "warm-up")

    bare_runs, product_runs = [], []
    for run in range(args.rounds):
        start = time.perf_counter()
        bare_loop(plan.bodies)
        bare_runs.append(time.perf_counter() - start)
        start = time.perf_counter()
        product(plan.bodies, f"bench-{run}")
        product_runs.append(time.perf_counter() - start)
    standin.stdin.close()
    standin.wait(timeout=10)

    bare, ours = statistics.median(bare_runs), statistics.median(product_runs)
    calls = len(range(0, args.tasks, CHUNK))
    print(f"{args.tasks} tasks, {calls} upstream calls, median of {args.rounds} rounds")
    print(f"  plan (CSV + form check per task): {plan_seconds:.3f} s")
    print(f"  bare requests loop:               {bare:.3f} s  (runs: {_runs(bare_runs)})")
    print(f"  product batch_submit:             {ours:.3f} s  (runs: {_runs(product_runs)})")
    print(f"  ratio product / bare:             {ours / bare:.2f}")


def _runs(seconds: list[float]) -> str:
    return " ".join(f"{value:.3f}" for value in seconds)


if __name__ == "__main__":
    main()
