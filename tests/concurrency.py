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


class AnotherTransactionFirst:
    """Wraps a step (`step`, a function) so that the first time it is called it first runs `action()` in a
    thread of its own (its own connection, so its own transaction) and waits up to `wait` seconds for it:
    another request slips in between what the caller read and what it writes. A database that makes
    `action` wait for the caller's transaction (SQLite takes its write lock up front) lets the caller go on
    after `wait`, and `action` runs once the caller commits; `join()` waits for it either way."""

    def __init__(self, step, action, *, wait: float = 2.0) -> None:
        self.step, self.action, self.wait = step, action, wait
        self.thread = threading.Thread(target=self._run)
        self.result = None

    def __call__(self, *args, **kwargs):
        if self.thread.ident is None:
            self.thread.start()
            self.thread.join(timeout=self.wait)
        return self.step(*args, **kwargs)

    def join(self):
        """What `action` returned (or raised), once it has run; None if the step was never reached."""
        if self.thread.ident is not None:
            self.thread.join(timeout=60)
        return self.result

    def _run(self) -> None:
        try:
            self.result = self.action()
        except Exception as exc:  # asserted on by the test
            self.result = exc
        finally:
            connection.close()
