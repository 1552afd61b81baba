"""Sending 30 live tasks: one at a time (one thread) against several in flight (the live loop's threads,
tasks/submission/live.py), each live call answered by the stand-in after SANDBOX_LIVE_DELAY seconds.

    .venv/bin/python bench/bench_live.py      # 30 tasks, a delay of 1 s, 1, 10 and 30 threads
    .venv/bin/python bench/bench_live.py --delay 0.5 --threads 1 10 --rounds 3

The stand-in runs in a process of its own (bench/_standin.py), the product on SQLite in a temp dir. Each
round submits 30 live Perplexity tasks (each planned as its chunk, as the builder does), then times
`live_drain` with the given number of threads until every task is completed. Serial time is about
30 × delay; with N threads about 30 / N × delay plus the claims and recordings (one transaction each).
The upstream's limit of 30 concurrent live calls per provider per account is the ceiling.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _builder_setup import make_credential, make_member, setup_django


def serve():
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
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the stand-in takes per live call")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ["SANDBOX_LIVE_DELAY"] = str(args.delay)  # read by the stand-in's process
    setup_django()
    from tasks.models import Task
    from tasks.submission import sending
    from tasks.submission.live import live_drain

    user = make_member()
    standin, url = serve()
    credential = make_credential(f"{url}/sandbox/apis/v1/dataforseo")

    def submit(label: str) -> list:
        pks = []
        for i in range(args.tasks):
            spec = sending.TaskSpec(
                provider="perplexity",
                body={"user_prompt": f"{label}: running shoes {i}?", "model_name": "sonar"},
            )
            pks += sending.submit_task_ids(
                specs=[spec], credential=credential, user=user, mode=Task.Mode.LIVE
            )
        return pks

    def timed(threads: int, label: str) -> float:
        pks = submit(label)
        start = time.perf_counter()
        live_drain(worker=f"bench-{threads}", threads=threads)
        elapsed = time.perf_counter() - start
        done = Task.objects.filter(pk__in=pks, status=Task.Status.COMPLETED).count()
        assert done == len(pks), f"{done} of {len(pks)} completed"
        return elapsed

    try:
        timed(max(args.threads), "warm-up")
        results: dict[int, list[float]] = {n: [] for n in args.threads}
        for round_ in range(args.rounds):
            for threads in args.threads:
                results[threads].append(timed(threads, f"round {round_} × {threads}"))
        print(f"{args.tasks} live tasks, each answered after {args.delay:g} s; {args.rounds} rounds")
        serial = statistics.median(results[min(args.threads)])
        for threads, times in results.items():
            median = statistics.median(times)
            print(
                f"  {threads:>2} thread{'s' if threads > 1 else ' '}: median {median:6.2f} s "
                f"(range {min(times):.2f}–{max(times):.2f} s), ×{serial / median:.1f} against "
                f"{min(args.threads)}"
            )
    finally:
        standin.stdin.close()
        standin.wait(timeout=30)


if __name__ == "__main__":
    main()
