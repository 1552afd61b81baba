"""Callbacks of finished tasks: a GET to `pingback_url`, a gzip-compressed POST of the task_get envelope to
`postback_url` (api-reference §5).

The process that accepted a task starts a timer for when it becomes ready; delivery happens at most once per
task (claimed in the database), and its outcome is recorded on the task. A delivered postback counts as
collecting the task, so it leaves tasks_ready; a failed one leaves it there, as upstream. Failures are logged,
never raised. SANDBOX_DELIVER_CALLBACKS = False switches delivery off.
"""

import gzip
import heapq
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import quote

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from sandbox.envelope import finished_envelope
from sandbox.models import SandboxTask

logger = logging.getLogger(__name__)

CALLBACK_TIMEOUT = 10.0
# Characters left as they are when the URL is encoded: everything a URL needs, but not "#" or spaces.
_URL_SAFE = ":/?&=%@+,;!$'()*[]~"
# Callbacks go straight to the product, never through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def callback_url(template: str, *, task_id: str, tag: str | None) -> str:
    """Substitute $id and the url-encoded $tag, then url-encode what the URL cannot carry ("#" → "%23")."""
    url = template.replace("$id", task_id).replace("$tag", quote(tag or "", safe=""))
    return quote(url, safe=_URL_SAFE)


# Callbacks due at the same moment (a batch's thousands of tasks) go out this many at a time, each from one
# of this many threads of the process that accepted them: the receiver is often this same dev server, and
# thousands of callbacks at once left it no thread for anything else.
MAX_CONCURRENT_DELIVERIES = 4

_due: list[tuple[float, int, str]] = []  # (when, order, task id): a heap
_order = itertools.count()
_due_changed = threading.Condition()
_workers: list[threading.Thread] = []


def schedule(task_id: str, delay: float) -> None:
    """Deliver the task's callbacks from a background thread once it is ready."""
    if not settings.SANDBOX_DELIVER_CALLBACKS:
        return
    with _due_changed:
        heapq.heappush(_due, (time.monotonic() + max(delay, 0.0), next(_order), task_id))
        _workers[:] = [worker for worker in _workers if worker.is_alive()]  # none survive a fork
        if len(_workers) < MAX_CONCURRENT_DELIVERIES:
            worker = threading.Thread(target=_deliver_when_due, name="sandbox-callbacks", daemon=True)
            worker.start()
            _workers.append(worker)
        _due_changed.notify()


def _deliver_when_due() -> None:
    """A delivery thread: sends the callbacks of the task due first, once it is due; forever."""
    while True:
        with _due_changed:
            while not _due or _due[0][0] > time.monotonic():
                _due_changed.wait(timeout=_due[0][0] - time.monotonic() if _due else None)
            _when, _n, task_id = heapq.heappop(_due)
        _deliver_in_background(task_id)


def _deliver_in_background(task_id: str) -> None:
    close_old_connections()
    try:
        deliver_callbacks(task_id)
    except Exception:
        logger.exception("Sandbox callbacks of task %s failed", task_id)
    finally:
        connections.close_all()


def _send(request: urllib.request.Request) -> str:
    """Send one callback; the outcome as a short text ("HTTP 204", "error: ...")."""
    try:
        with _opener.open(request, timeout=CALLBACK_TIMEOUT) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        logger.warning("Sandbox callback %s %s answered HTTP %s", request.method, request.full_url, exc.code)
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:  # URLError, timeouts and refused connections are OSErrors
        logger.warning("Sandbox callback %s %s failed: %s", request.method, request.full_url, exc)
        return f"error: {exc}"[:200]


def deliver_callbacks(task_id: str) -> bool:
    """Send a finished task's pingback and postback, unless they were sent already. True if this call sent."""

    row = SandboxTask.objects.filter(pk=task_id).first()
    if row is None or not (row.data.get("pingback_url") or row.data.get("postback_url")):
        return False
    wait = (row.ready_at - timezone.now()).total_seconds()
    if wait > 0:
        time.sleep(wait)  # a timer that fired a little early
    claimed = SandboxTask.objects.filter(pk=task_id, callbacks_claimed_at__isnull=True).update(
        callbacks_claimed_at=timezone.now()
    )
    if not claimed:
        return False

    tag = row.data.get("tag")
    outcomes: dict[str, str] = {}
    if row.data.get("pingback_url"):
        url = callback_url(row.data["pingback_url"], task_id=row.id, tag=tag)
        outcomes["pingback_outcome"] = _send(urllib.request.Request(url, method="GET"))  # noqa: S310 (http(s) only, see rules)
    if row.data.get("postback_url"):
        url = callback_url(row.data["postback_url"], task_id=row.id, tag=tag)
        body = gzip.compress(json.dumps(finished_envelope(row, started=time.monotonic())).encode())
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        outcomes["postback_outcome"] = _send(request)
    SandboxTask.objects.filter(pk=task_id).update(**outcomes)
    if outcomes.get("postback_outcome", "").startswith("HTTP 2"):
        SandboxTask.objects.filter(pk=task_id, fetched_at__isnull=True).update(fetched_at=timezone.now())
    return True
