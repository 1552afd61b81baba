"""Running the real sending worker inside a test: submissions only plan, and a worker sends.

tasks = sending.submit_tasks(...)   # planned: queued, nothing posted
send_planned()                      # the worker loop (tasks/submission/workers.py), in this process
"""

from tasks.models import Task
from tasks.submission import sending
from tasks.submission.live import live_drain
from tasks.submission.workers import chunks_drain


def send_planned(*, wait: float = 3.0) -> int:
    """Send every planned chunk through the worker's own code, in this process, waiting up to `wait`
    seconds for one that is delayed (a rate limit, a retry); return how many chunks were claimed.
    Queued chunks first (workers.py), then live ones (live.py)."""
    return chunks_drain(worker="test-worker", wait_for_delayed=wait) + live_drain(
        worker="test-worker", wait_for_delayed=wait
    )


def submit_and_send(**kwargs) -> list[Task]:
    """`sending.submit_tasks`, then a worker's sending; the tasks as the worker left them."""
    tasks = sending.submit_tasks(**kwargs)
    send_planned()
    saved = Task.objects.in_bulk([task.pk for task in tasks])
    return [saved[task.pk] for task in tasks]
