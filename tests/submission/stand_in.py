"""Tasks whose reply was lost, made for real against the stand-in upstream served by live_server: the
stand-in accepts and charges the task, then the reply breaks (an HTTP 500 after processing)."""

import gzip
import json
import time
from decimal import Decimal

import pytest
from django.conf import settings as django_settings

from sandbox import faults
from sandbox.delivery import callback_url
from sandbox.envelope import finished_envelope
from sandbox.models import SandboxRequest, SandboxTask
from tasks.models import Credential, Task
from tasks.submission import sending
from tests.factories import make_user
from tests.submission.sending import submit_and_send

QUEUED_CHARGE = Decimal("0.0102")


@pytest.fixture
def stand_in(live_server, settings):
    """The stand-in answering over HTTP; callbacks are delivered by the tests themselves unless they say
    otherwise, and go to this same live server."""
    settings.SANDBOX_TASK_DELAY = 0.3
    settings.SANDBOX_DELIVER_CALLBACKS = False
    settings.UPSTREAM_READ_TIMEOUT = 2
    settings.PUBLIC_BASE_URL = live_server.url
    yield live_server
    faults.clear()


@pytest.fixture
def direct(stand_in):
    """A DataForSEO-direct credential (login and password) on the stand-in."""
    credential = Credential(
        name="Direct",
        kind=Credential.Kind.DATAFORSEO,
        base_url=f"{stand_in.url}/sandbox/v3",
        login=django_settings.SANDBOX_LOGIN,
    )
    credential.set_secret(django_settings.SANDBOX_PASSWORD)
    credential.save()
    return credential


@pytest.fixture
def aisa(stand_in):
    credential = Credential(
        name="AIsa", kind=Credential.Kind.AISA, base_url=f"{stand_in.url}/sandbox/apis/v1/dataforseo"
    )
    credential.set_secret("sandbox-key")
    credential.save()
    return credential


def lost_reply_task(credential: Credential, *, prompt: str = "Tallest tower in Paris?", **fields) -> Task:
    """Submit one task whose reply is lost after the stand-in accepted (and charged) it."""
    faults.inject("http500", function="task_post")
    body = {"user_prompt": prompt, "model_name": "gpt-4.1-mini", **fields}
    spec = sending.TaskSpec(provider="chat_gpt", body=body)
    (task,) = submit_and_send(specs=[spec], credential=credential, user=make_user())
    assert task.status == Task.Status.UNKNOWN and not task.upstream_task_id
    return task


def upstream_row(task: Task) -> SandboxTask:
    """The stand-in's record of the task (found by the tag it was sent with)."""
    (row,) = [row for row in SandboxTask.objects.all() if row.data.get("tag") == task.request_body["tag"]]
    return row


def wait_until_ready(row: SandboxTask) -> None:
    time.sleep(max(0.0, (row.ready_at - row.created_at).total_seconds()) + 0.1)


def own_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def postback_body(row: SandboxTask) -> bytes:
    """What the stand-in POSTs to the postback URL: the finished envelope, gzip-compressed."""
    return gzip.compress(json.dumps(finished_envelope(row, started=time.monotonic())).encode())


def pingback_path(task: Task, row: SandboxTask) -> str:
    """The pingback URL as the upstream calls it ($id replaced by its own task id)."""
    return own_path(callback_url(task.request_body["pingback_url"], task_id=row.id, tag=row.data.get("tag")))


def postback_path(task: Task) -> str:
    return own_path(task.request_body["postback_url"])


def task_posts() -> int:
    return SandboxRequest.objects.filter(method="POST", function="task_post").count()


def requests_to(function: str) -> int:
    return SandboxRequest.objects.filter(function=function).count()
