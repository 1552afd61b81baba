"""A sending worker in a process of its own, for the kill tests: the product's worker loop, with one
step replaced so that the process kills itself (SIGKILL: no cleanup, no `finally`) at that step of a
chosen chunk. No test hook lives in the product's code: the step is monkeypatched here.

    python -m tests.submission.worker_process [--kill-at STEP] [--kill-chunk N] [--wait SECONDS]
                                              [--start-file PATH]

STEP: claimed (the claim is committed, the POST not started), post_started (post_started_at committed,
nothing sent), posted (the POST answered, nothing recorded), recording (inside the outcome's transaction,
its rows written, not committed). The environment names the database (DATABASE_URL) and the keys.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

STEPS = ("claimed", "post_started", "posted", "recording")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", choices=STEPS)
    parser.add_argument("--kill-chunk", type=int, default=2, help="The N-th chunk this worker handles.")
    parser.add_argument("--wait", type=float, default=0, help="Also wait this long for delayed chunks.")
    parser.add_argument("--start-file", help="Wait for this file before sending (several workers at once).")
    parser.add_argument("--name", default=f"worker-{os.getpid()}")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from tasks import services
    from tasks.submission import chunks

    seen = {"chunks": 0}

    def die() -> None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def count_chunks(claim):
        def claim_counted(**kwargs):
            claimed = claim(**kwargs)
            if claimed is not None:
                seen["chunks"] += 1
            return claimed

        return claim_counted

    def kill_before(step):
        def killing(*a, **kw):
            if seen["chunks"] == args.kill_chunk:
                die()
            return step(*a, **kw)

        return killing

    def kill_after(step):
        def killing(*a, **kw):
            result = step(*a, **kw)
            if seen["chunks"] == args.kill_chunk:
                die()
            return result

        return killing

    chunks.chunk_claim = count_chunks(chunks.chunk_claim)
    if args.kill_at == "claimed":
        chunks.chunk_mark_post_started = kill_before(chunks.chunk_mark_post_started)
    elif args.kill_at == "post_started":
        chunks.chunk_post = kill_before(chunks.chunk_post)
    elif args.kill_at == "posted":
        chunks.chunk_record_outcome = kill_before(chunks.chunk_record_outcome)
    elif args.kill_at == "recording":
        services.tasks_record_post_outcomes = kill_after(services.tasks_record_post_outcomes)

    print("ready", flush=True)
    if args.start_file:
        while not Path(args.start_file).exists():
            time.sleep(0.01)
    claimed = chunks.chunks_drain(worker=args.name, wait_for_delayed=args.wait)
    print(f"claimed {claimed}", flush=True)


if __name__ == "__main__":
    main()
