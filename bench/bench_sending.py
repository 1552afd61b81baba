"""Sending a 10,000-task submission: accepting it (the web request's part), then workers sending its 100
chunks, against a bare `requests` loop posting the same 100 chunks.

    .venv/bin/python bench/bench_sending.py                  # the product on SQLite in a temp dir
    .venv/bin/python bench/bench_sending.py --database-url postgres://postgres@127.0.0.1:5432/bench_sending
    .venv/bin/python bench/bench_sending.py --post-delay 0.1     # each POST's reply takes 0.1 s more

The stand-in upstream runs in a process of its own (bench/_standin.py), as in bench_batch.py. Each round
submits 10,000 tasks with `sending.submit_task_ids` (a new batch: budgets checked, every task row and its
chunk written in one transaction: "accept"), then starts the given number of worker processes
(bench/_sender.py, the product's own loop `chunks_drain`, Django already set up in them) and times them
from the start signal until the last has recorded its last chunk ("send"; a worker is a long-lived process,
so its exit is not part of sending: the time until the processes exited is printed beside it). The first
chunk's one-off costs (a new connection to the stand-in, the credential's client, the ORM's first queries)
are counted. The baseline posts the same 100 chunks (the stored task bodies, read beforehand; serialised
and posted in the timed loop, each reply parsed) with one `requests.Session` and does nothing else.
Baseline and product alternate within each round; figures are medians over the rounds, the ratio also as
the median of each round's ratio. A --database-url database is dropped and created afresh.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _builder_setup import make_credential, make_member, setup_django
from _postgres import ensure_database

CHUNK = 100


def serve(post_delay: float = 0.0):
    standin = subprocess.Popen(  # noqa: S603 (our own script, by absolute path)
        [sys.executable, str(Path(__file__).with_name("_standin.py"))],
        env={**os.environ, "SANDBOX_POST_DELAY": str(post_delay)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return standin, standin.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    parser.add_argument("--database-url", default="", help="the product's database (default: SQLite)")
    parser.add_argument(
        "--post-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="the stand-in answers each task_post this long after accepting it (a real upstream's round "
        "trip; default 0: only the stand-in's own work)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        metavar="CHUNKS",
        help="instead: time each step of a worker (claim, post_started, POST, outcome) over CHUNKS chunks, "
        "one after the other in this process",
    )
    args = parser.parse_args()
    data_dir = setup_django(ensure_database(args.database_url, fresh=True) if args.database_url else "")
    import requests
    from django.db import connection

    from tasks.models import Batch, SendChunk, Task
    from tasks.submission import sending

    user = make_member()
    standin, url = serve(args.post_delay)
    base_url = f"{url}/sandbox/apis/v1/dataforseo"
    credential = make_credential(base_url)
    session = requests.Session()
    post_url = f"{base_url}/ai_optimization/chat_gpt/llm_responses/task_post"
    headers = {"Authorization": "Bearer sandbox-key", "Content-Type": "application/json"}
    env = {**os.environ}  # setup_django put the database, keys and settings module here
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"

    def submit(n: int, label: str) -> tuple[float, Batch]:
        specs = [
            sending.TaskSpec(
                provider="chat_gpt", body={"user_prompt": f"{label} city {i}", "model_name": "gpt-4.1"}
            )
            for i in range(n)
        ]
        batch = Batch(name=label, task_count=n)
        start = time.perf_counter()
        sending.submit_task_ids(specs=specs, credential=credential, user=user, batch=batch)
        return time.perf_counter() - start, batch

    def bare_loop(batch: Batch) -> float:
        chunks = []
        for chunk_id in SendChunk.objects.filter(batch=batch).order_by("id").values_list("pk", flat=True):
            bodies = (
                Task.objects.filter(chunk_id=chunk_id)
                .order_by("created_at")
                .values_list("request_body", flat=True)
            )
            chunks.append(json.dumps(list(bodies)))
        start = time.perf_counter()
        for chunk in chunks:
            reply = session.post(post_url, data=chunk, headers=headers, timeout=60)
            assert reply.status_code == 200 and reply.json()["tasks_error"] == 0
        return time.perf_counter() - start

    def workers(count: int, batch: Batch) -> tuple[float, float]:
        """Seconds until the last chunk was recorded, and until the processes had exited."""
        start_file = Path(tempfile.mkdtemp(dir=data_dir)) / "go"
        processes = [
            subprocess.Popen(  # noqa: S603
                [sys.executable, str(Path(__file__).with_name("_sender.py")), f"bench-{n}", str(start_file)],
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            )
            for n in range(count)
        ]
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        start = time.monotonic()
        start_file.touch()
        done_at = []
        for process in processes:
            _claimed, at = process.stdout.readline().split()
            done_at.append(float(at))
            process.wait(timeout=600)
        exited = time.monotonic() - start
        submitted = batch.tasks.filter(status=Task.Status.SUBMITTED).count()
        assert submitted == batch.task_count, f"{submitted} of {batch.task_count} submitted"
        return max(done_at) - start, exited

    if args.steps:
        steps(args.steps, submit)
        standin.stdin.close()
        standin.wait(timeout=10)
        return

    # Warm-up: a connection to the stand-in, and a submission sent once through every path.
    _, warm = submit(CHUNK, "warm-up")
    bare_loop(warm)
    workers(1, warm)

    accept, bare, sent = [], [], {count: [] for count in args.workers}
    exited = {count: [] for count in args.workers}
    ratios = {count: [] for count in args.workers}
    for number in range(args.rounds):
        round_bare = None
        for count in args.workers:
            seconds, batch = submit(args.tasks, f"round {number} x{count}")
            accept.append(seconds)
            if round_bare is None and number % 2 == 0:
                round_bare = bare_loop(batch)
            recorded, gone = workers(count, batch)
            sent[count].append(recorded)
            exited[count].append(gone)
            if round_bare is None:
                round_bare = bare_loop(batch)
            ratios[count].append(sent[count][-1] / round_bare)
        bare.append(round_bare)
        print(
            f"round {number + 1}: accept {accept[-1]:.2f} s, bare loop {round_bare:.2f} s, "
            + ", ".join(f"{count} worker(s) {sent[count][-1]:.2f} s" for count in args.workers),
            flush=True,
        )

    median = statistics.median
    print(
        f"\nDatabase: {connection.vendor}; {args.tasks} tasks = {args.tasks // CHUNK} chunks; "
        f"{args.rounds} rounds; stand-in's POST delay {args.post_delay:g} s"
    )
    print(
        f"Accepting the submission (request's part): median {median(accept):.2f} s, max {max(accept):.2f} s"
    )
    print(f"Bare requests loop: median {median(bare):.2f} s")
    for count in args.workers:
        print(
            f"{count} worker(s): median {median(sent[count]):.2f} s, ratio to the bare loop "
            f"{median(sent[count]) / median(bare):.2f}x (median of rounds {median(ratios[count]):.2f}x); "
            f"until the processes exited {median(exited[count]):.2f} s"
        )
    standin.stdin.close()
    standin.wait(timeout=10)


def steps(chunks: int, submit) -> None:
    """The worker's steps, timed one by one over `chunks` chunks (no sending thread: each step alone):
    wall time, and this process's CPU time in it (what the worker takes from a machine's CPUs)."""
    from django.db import connection

    from tasks.submission.chunks import chunk_claim, chunk_mark_post_started
    from tasks.submission.replies import chunk_record_outcome
    from tasks.submission.workers import _post_reply, chunk_prepare

    submit(CHUNK, "warm-up")
    submit(chunks * CHUNK, "steps")
    clients: dict = {}
    names = ("claim", "prepare", "post_started", "POST", "outcome")
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}

    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    while True:
        marks = [clock()]
        claimed = chunk_claim(worker="steps")
        if claimed is None:
            break
        marks.append(clock())
        client = chunk_prepare(claimed, clients=clients)
        marks.append(clock())
        assert client is not None and chunk_mark_post_started(claimed)
        marks.append(clock())
        reply = _post_reply(client, claimed)
        marks.append(clock())
        chunk_record_outcome(claimed, reply)
        marks.append(clock())
        for name, before, after in zip(names, marks[:-1], marks[1:], strict=True):
            wall[name].append((after[0] - before[0]) * 1000)
            cpu[name].append((after[1] - before[1]) * 1000)
    skip = 1  # the warm-up chunk
    count = len(wall["claim"]) - skip
    print(f"Database: {connection.vendor}; {count} chunks of {CHUNK} tasks, per chunk (ms):")
    for name in names:
        values, used = wall[name][skip:], cpu[name][skip:]
        print(
            f"  {name:13} median {statistics.median(values):6.1f}  max {max(values):6.1f}  "
            f"CPU median {statistics.median(used):5.1f}"
        )


if __name__ == "__main__":
    main()
