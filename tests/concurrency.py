"""Two (or more) requests at the same moment, for the tests of saves that race (two presses, two tabs)."""

import threading

from django.db import connection


def run_concurrently(target, count: int) -> list:
    """Run `target(i)` in `count` threads released together; each thread uses and closes its own
    database connection. Returns each thread's result or exception."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = target(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
