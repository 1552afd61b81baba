"""A sending worker in a process of its own, for the kill tests: the product's worker loop, with one
step replaced so that the process kills itself (SIGKILL: no cleanup, no `finally`) at that step of a
chosen chunk. No test hook lives in the product's code: the step is monkeypatched here.

    python -m tests.submission.worker_process [--kill-at STEP] [--kill-call N] [--wait SECONDS]
                                              [--start-file PATH] [--resend-delay SECONDS]
                                              [--unreachable-delay SECONDS] [--rate-limit-wait SECONDS]
                                              [--pingback-before-recording PATH]

STEP, at the N-th time the worker reaches it: claimed (a claim is committed, its POST not started),
post_started (post_started_at committed, nothing sent), posted (the POST answered, nothing recorded),
recording (inside the outcome's transaction, its rows written, not committed: the accepted and refused
tasks of a reply, or the tasks of a POST refused as a whole for now, queued again), replanning (inside it
too, after the tasks refused with a temporary code were planned again in a new chunk; a live task too).
The worker overlaps one chunk's POST with the previous chunk's recording, so the tests pick calls where
nothing else is under way. PATH: a pingback (our own callback URL) requested from a thread of its own,
its own transaction, just before the first outcome's upstream ids are written (--live: the first UPDATE
writing one; see tests.concurrency.AnotherTransactionFirst). The environment names the database
(DATABASE_URL) and the keys.
"""

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

STEPS = ("claimed", "post_started", "posted", "recording", "replanning")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", choices=STEPS)
    parser.add_argument("--kill-call", type=int, default=1, help="At the N-th time this worker reaches STEP.")
    parser.add_argument("--wait", type=float, default=0, help="Also wait this long for delayed chunks.")
    parser.add_argument("--start-file", help="Wait for this file before sending (several workers at once).")
    parser.add_argument("--name", default=f"worker-{os.getpid()}")
    parser.add_argument("--live", action="store_true", help="Run the live loop (tasks/submission/live.py).")
    parser.add_argument("--threads", type=int, default=1, help="Live calls in flight at once (--live).")
    parser.add_argument("--resend-delay", type=float, help="Send a task refused for now again this soon.")
    parser.add_argument(
        "--unreachable-delay", type=float, help="Send a chunk refused as a whole for now again this soon."
    )
    parser.add_argument(
        "--rate-limit-wait", type=float, help="A 40202 (no Retry-After) stops the credential this long."
    )
    parser.add_argument("--pingback-before-recording", help="Request this callback URL mid-recording.")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from tasks.submission import chunks, live, rate_limits, recording, workers

    if args.resend_delay is not None:
        chunks.RESEND_DELAYS = (args.resend_delay, args.resend_delay)
    if args.rate_limit_wait is not None:
        rate_limits.DEFAULT_RETRY_AFTER = args.rate_limit_wait
    if args.unreachable_delay is not None:
        chunks.UNREACHABLE_DELAYS = (args.unreachable_delay,) * len(chunks.UNREACHABLE_DELAYS)

    calls = {"count": 0}
    lock = threading.Lock()

    def die() -> None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def nth_call() -> bool:
        with lock:
            calls["count"] += 1
            return calls["count"] == args.kill_call

    def kill_before(step):
        def killing(*a, **kw):
            if nth_call():
                die()
            return step(*a, **kw)

        return killing

    def kill_after(step):
        def killing(*a, **kw):
            result = step(*a, **kw)
            if nth_call():
                die()
            return result

        return killing

    if args.live:
        if args.kill_at == "claimed":
            live.chunk_mark_post_started = kill_before(live.chunk_mark_post_started)
        elif args.kill_at == "post_started":
            live._post_reply = kill_before(live._post_reply)
        elif args.kill_at == "posted":
            live.chunk_record_outcome = kill_before(live.chunk_record_outcome)
        elif args.kill_at == "recording":
            recording.task_record_live = kill_after(recording.task_record_live)
        elif args.kill_at == "replanning":
            recording.tasks_plan_again = kill_after(recording.tasks_plan_again)
    elif args.kill_at == "claimed":
        workers.chunk_mark_post_started = kill_before(workers.chunk_mark_post_started)
    elif args.kill_at == "post_started":
        workers.chunk_post = kill_before(workers.chunk_post)
    elif args.kill_at == "posted":
        workers.chunk_record_outcome = kill_before(workers.chunk_record_outcome)
    elif args.kill_at == "recording":
        recording.tasks_record_post_outcomes = kill_after(recording.tasks_record_post_outcomes)
        recording.tasks_refused_whole_for_now = kill_after(recording.tasks_refused_whole_for_now)
    elif args.kill_at == "replanning":
        recording.tasks_plan_again = kill_after(recording.tasks_plan_again)

    if args.pingback_before_recording:
        from django.test import Client

        from tests.concurrency import AnotherTransactionFirst

        path = args.pingback_before_recording
        pingback = AnotherTransactionFirst(lambda: None, lambda: Client().get(path))
        if args.live:  # a live answer's id is one UPDATE of its task
            from django.db.models import QuerySet

            update = QuerySet.update

            def update_after_pingback(queryset, **fields):
                if fields.get("upstream_task_id"):
                    pingback()
                return update(queryset, **fields)

            QuerySet.update = update_after_pingback
        else:
            recording.update_rows = AnotherTransactionFirst(recording.update_rows, pingback.action)

    print("ready", flush=True)
    if args.start_file:
        while not Path(args.start_file).exists():
            time.sleep(0.01)
    if args.live:
        claimed = live.live_drain(worker=args.name, wait_for_delayed=args.wait, threads=args.threads)
    else:
        claimed = workers.chunks_drain(worker=args.name, wait_for_delayed=args.wait)
    print(f"claimed {claimed}", flush=True)


if __name__ == "__main__":
    main()
