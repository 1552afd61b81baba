"""The issue's "Done when" at full size: a 10,000-task batch submitted on the batch page, with the web
server and every worker killed (SIGKILL) and restarted twice while it is being sent.

    .venv/bin/python bench/bench_durable.py                      # the product on SQLite in a temp dir
    .venv/bin/python bench/bench_durable.py --database-url postgres://postgres@127.0.0.1:5432/bench_sending2_durable

Every process is real (tests/submission/durable_run.py, as in tests/submission/test_durable_sending.py,
which runs 1,000 tasks in the suite): the stand-in in a process of its own with its own database, gunicorn
(`bin/entrypoint web`) and two `bin/entrypoint worker` processes. Prints how long checking and accepting
the rows took, when the kills came, how long sending and collecting took, the batch page's time, and what
reached the stand-in: every task once at most, counted there. A --database-url database is dropped and
created afresh.
"""

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.submission.durable_run import DurableRun, postgres_database, run_with_kills  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--calls-per-minute", type=int, default=None, help="The credential's own limit (default: 2,000)."
    )
    args = parser.parse_args()

    database_url = args.database_url
    if database_url:
        database_url = postgres_database(database_url, database_url.rsplit("/", 1)[1])
    with tempfile.TemporaryDirectory(prefix="bench-durable-") as directory:
        run = DurableRun(Path(directory), database_url=database_url, calls_per_minute=args.calls_per_minute)
        try:
            report = run_with_kills(run, rows=args.rows, timeout=1800)
            tasks = run.tasks()
            reached = run.upstream_tags()
        finally:
            run.stop()
    times = Counter(reached[task["tag"]] for task in tasks)
    report["tasks_reaching_the_stand_in"] = {f"{n} time(s)": count for n, count in sorted(times.items())}
    report["sent_twice"] = sum(count for n, count in times.items() if n > 1)
    unknown = [task for task in tasks if task["status"] == "unknown"]
    report["unknown_that_reached_the_stand_in"] = sum(1 for task in unknown if reached[task["tag"]])
    print(json.dumps(report, indent=2, default=str))
    if report["sent_twice"]:
        raise SystemExit("A task was sent twice.")


if __name__ == "__main__":
    main()
