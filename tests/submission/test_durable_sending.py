"""The issue's end-to-end promise (issue 14, "Done when"): a batch submitted on the batch page by a person,
with the web server and every worker killed (SIGKILL) and restarted twice while it is being sent, ends with
every task completed, failed with the upstream's reason, or unknown only where its POST was truly in
flight — and no task sent twice, counted at the stand-in.

Every process is real (tests/submission/durable_run.py): the stand-in in a process of its own, gunicorn
and two `bin/entrypoint worker` processes on the product's database (SQLite in a temp dir; on PostgreSQL a
database of its own when the suite runs on PostgreSQL). 1,000 tasks here (10 chunks at one call a second,
the credential's own limit, so the kills land while it sends); bench/bench_durable.py runs 10,000.
"""

import os

import pytest

from tests.submission.durable_run import DurableRun, postgres_database, run_with_kills

ROWS = 1000


@pytest.fixture
def product_database():
    suite = os.environ.get("DATABASE_URL", "")
    if not suite.startswith("postgres"):
        yield ""
        return
    name = f"e2e_sending_{os.getpid()}"
    yield postgres_database(suite, name)
    postgres_database(suite, name, drop=True)


@pytest.mark.long
def test_a_batch_sent_while_the_web_server_and_every_worker_are_killed_twice(tmp_path, product_database):
    run = DurableRun(tmp_path, database_url=product_database, calls_per_minute=60)
    try:
        report = run_with_kills(run, rows=ROWS, kill_at=(0.2, 0.5))
        tasks = run.tasks()
        reached = run.upstream_tags()
    finally:
        run.stop()

    # Accepted (the confirmation redirected to the batch page: how long it takes is bench_durable's); the
    # page is done (no more polling) and shows the batch.
    assert report["batch_page_status"] == 200
    # Done: it stops polling, unknown tasks left or not (a lost reply is settled for the batch: never
    # resent; its own task page goes on asking, slowly).
    assert not report["batch_page_polls"], report
    # Both kills came while chunks were still waiting to be sent.
    assert all(kill["planned"] > 0 for kill in report["kills"][:2]), report

    assert len(tasks) == ROWS
    # Not one task reached the upstream twice.
    assert set(reached.values()) == {1}, reached.most_common(3)
    by_status = {
        status: [task for task in tasks if task["status"] == status]
        for status in ("completed", "failed", "unknown")
    }
    assert sum(len(group) for group in by_status.values()) == ROWS, report["statuses"]
    # Every task the upstream accepted was completed with its result: nothing paid is thrown away (the
    # in-flight ones by their callback or by tasks_ready).
    for task in tasks:
        if reached[task["tag"]]:
            assert task["status"] == "completed", task
    # A failed task says why, in the upstream's words or as not sent.
    assert all(task["message"] for task in by_status["failed"])
    # Unknown only where a POST was in flight at a kill: at most the chunks then `sending`, each ≤ 100
    # tasks; none of them reached the upstream, so an admin can mark them as never charged.
    in_flight = sum(kill["sending"] for kill in report["kills"][:2]) * 100
    assert len(by_status["unknown"]) <= in_flight, report
    assert all(reached[task["tag"]] == 0 for task in by_status["unknown"])
    assert report["task_posts"] <= report["chunks"]
