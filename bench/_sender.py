"""A sending worker for bench_sending.py: the product's worker loop in a process of its own, on the
benchmark's database (the environment, set by the benchmark, names it). Prints "ready" once Django is
set up, waits for the start file, sends until no chunk is ready, prints how many chunks it claimed and
when it had recorded the last (time.monotonic(), the system-wide clock the benchmark reads too)."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    name, start_file = sys.argv[1], Path(sys.argv[2])
    import django

    django.setup()
    from django.db import connection

    from tasks.submission.workers import chunks_drain

    connection.ensure_connection()
    print("ready", flush=True)
    deadline = time.monotonic() + 600  # the benchmark stopped without starting us
    while not start_file.exists():
        if time.monotonic() > deadline:
            sys.exit("No start signal in 10 minutes.")
        time.sleep(0.002)
    claimed = chunks_drain(worker=name)
    print(claimed, time.monotonic(), flush=True)


if __name__ == "__main__":
    main()
