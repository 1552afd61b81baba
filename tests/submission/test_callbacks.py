"""The pingback and postback endpoints the upstream calls (api-reference §5)."""

import gzip
import json
import uuid
from decimal import Decimal

import pytest
from django.tasks import default_task_backend
from django.urls import reverse

from tasks.models import Credential, Task, TaskEvent
from tasks.submission import callbacks
from tests.upstream.test_results import FINISHED

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted_task(db):
    credential = Credential(name="AIsa", kind=Credential.Kind.AISA)
    credential.set_secret("sandbox-key")
    credential.save()
    return Task.objects.create(
        provider="chat_gpt",
        credential=credential,
        request_body={"user_prompt": "hi", "model_name": "gpt-4.1-mini"},
        user_prompt="hi",
        model_name="gpt-4.1-mini",
        upstream_task_id="11221605-1535-0612-0000-abcdefabcdef",
        status=Task.Status.SUBMITTED,
        charged=Decimal("0.0102"),
        spend=Decimal("0.0102"),
    )


def url(name: str, task: Task, token: str | None = None) -> str:
    token = token or callbacks.callback_token(task.pk)
    return reverse(name, kwargs={"task_id": task.pk, "token": token})


def envelope(task: Task, result=FINISHED) -> dict:
    return {
        "status_code": 20000,
        "status_message": "Ok.",
        "tasks": [
            {
                "id": task.upstream_task_id,
                "status_code": 20000,
                "status_message": "Ok.",
                "cost": 0,
                "result": result,
            }
        ],
    }


def post_gzip(client, target: str, payload: bytes):
    return client.post(target, gzip.compress(payload), content_type="application/json")


def test_a_wrong_token_is_404_before_any_database_work(client, submitted_task, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert (
            client.get(url("submission:callback_pingback", submitted_task, token="forged")).status_code == 404
        )
        response = post_gzip(
            client,
            url("submission:callback_postback", submitted_task, "forged"),
            json.dumps(envelope(submitted_task)).encode(),
        )
        assert response.status_code == 404


def test_a_token_of_another_task_does_not_open_this_one(client, submitted_task):
    other_token = callbacks.callback_token(uuid.uuid4())
    assert (
        client.get(url("submission:callback_pingback", submitted_task, token=other_token)).status_code == 404
    )


def test_callbacks_need_no_login_and_a_pingback_triggers_one_fetch_of_our_stored_id(client, submitted_task):
    default_task_backend.clear()
    response = client.get(url("submission:callback_pingback", submitted_task) + "?id=someone-elses-id&tag=x")
    assert response.status_code == 200
    fetches = [r for r in default_task_backend.results if r.task.name == "fetch_after_callback"]
    assert [r.args for r in fetches] == [[str(submitted_task.pk)]]


def test_a_gzip_postback_completes_the_task(client, submitted_task):
    response = post_gzip(
        client,
        url("submission:callback_postback", submitted_task),
        json.dumps(envelope(submitted_task)).encode(),
    )
    assert response.status_code == 200
    submitted_task.refresh_from_db()
    assert submitted_task.status == Task.Status.COMPLETED
    assert submitted_task.answer_text.startswith("Parks in France")
    assert submitted_task.cost == Decimal("0.0002") + Decimal("0.0286")
    assert submitted_task.events.filter(kind=TaskEvent.Kind.CALLBACK).count() == 1


def test_a_plain_json_postback_is_accepted_too(client, submitted_task):
    response = client.post(
        url("submission:callback_postback", submitted_task),
        json.dumps(envelope(submitted_task)),
        content_type="application/json",
    )
    assert response.status_code == 200
    submitted_task.refresh_from_db()
    assert submitted_task.status == Task.Status.COMPLETED


def test_a_duplicate_postback_is_processed_once(client, submitted_task):
    body = json.dumps(envelope(submitted_task)).encode()
    assert post_gzip(client, url("submission:callback_postback", submitted_task), body).status_code == 200
    events_after_first = submitted_task.events.count()
    assert post_gzip(client, url("submission:callback_postback", submitted_task), body).status_code == 200
    assert submitted_task.events.count() == events_after_first
    assert submitted_task.events.filter(kind=TaskEvent.Kind.COMPLETED).count() == 1


def test_a_gzip_bomb_gets_413_and_changes_nothing(client, submitted_task):
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024) + b"}", compresslevel=9)
    assert len(bomb) < 1024 * 1024  # small on the wire, 64 MB unpacked
    response = client.post(
        url("submission:callback_postback", submitted_task), bomb, content_type="application/json"
    )
    assert response.status_code == 413
    submitted_task.refresh_from_db()
    assert submitted_task.status == Task.Status.SUBMITTED


def test_an_oversized_body_gets_413(client, submitted_task):
    response = client.post(
        url("submission:callback_postback", submitted_task),
        b"x" * (3 * 1024 * 1024),
        content_type="application/json",
    )
    assert response.status_code == 413


@pytest.mark.parametrize("body", [b"not json", gzip.compress(b"[1, 2", mtime=0), b"\x1f\x8bbroken", b"[]"])
def test_a_malformed_postback_is_a_400_not_a_500(client, submitted_task, body):
    response = client.post(
        url("submission:callback_postback", submitted_task), body, content_type="application/json"
    )
    assert response.status_code == 400
    submitted_task.refresh_from_db()
    assert submitted_task.status == Task.Status.SUBMITTED


def test_a_postback_about_another_upstream_task_is_ignored(client, submitted_task):
    body = envelope(submitted_task)
    body["tasks"][0]["id"] = "someone-else"
    response = client.post(
        url("submission:callback_postback", submitted_task), json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    submitted_task.refresh_from_db()
    assert submitted_task.status == Task.Status.SUBMITTED


def test_callback_urls_carry_the_task_id_and_a_token_only_when_public_base_url_is_set(
    settings, submitted_task
):
    settings.PUBLIC_BASE_URL = ""
    assert callbacks.callback_urls(submitted_task.pk) == {}
    settings.PUBLIC_BASE_URL = "https://dash.example.com"
    urls = callbacks.callback_urls(submitted_task.pk)
    assert urls["pingback_url"].startswith(f"https://dash.example.com/callbacks/{submitted_task.pk}/")
    assert urls["postback_url"].endswith("/postback/")


def task_object(task: Task, **fields) -> dict:
    return {"id": task.upstream_task_id, "status_code": 20000, "status_message": "Ok.", "cost": 0} | fields


def nested(depth: int) -> list:
    value = []
    for _ in range(depth):
        value = [value]
    return value


MALFORMED_POSTBACKS = {
    "deep nesting": lambda task: "[" * 100_000 + "]" * 100_000,
    "nesting deeper than any result": lambda task: json.dumps(
        {"tasks": [task_object(task, extra=nested(80))]}
    ),
    "tasks is a number": lambda task: json.dumps({"status_code": 20000, "tasks": 5}),
    "tasks is an object": lambda task: json.dumps({"tasks": {"id": task.upstream_task_id}}),
    "no status_code": lambda task: json.dumps({"tasks": [{"id": task.upstream_task_id, "result": FINISHED}]}),
    "status_code is text": lambda task: json.dumps({"tasks": [task_object(task, status_code="done")]}),
    "status_code is huge": lambda task: json.dumps({"tasks": [task_object(task, status_code=10**40)]}),
    "cost is NaN": lambda task: json.dumps({"tasks": [task_object(task, cost=float("nan"))]}),
    "NaN in the result": lambda task: json.dumps(
        {"tasks": [task_object(task, result=[{"money_spent": float("nan")}])]}
    ),
    "Infinity as the body": lambda task: "Infinity",
    "result is an object": lambda task: json.dumps({"tasks": [task_object(task, result={"items": []})]}),
    "data is a list": lambda task: json.dumps({"tasks": [task_object(task, data=[1])]}),
    "the body is a string": lambda task: json.dumps("tasks"),
    "the body is null": lambda task: "null",
    "not UTF-8": lambda task: b"\xff\xfe{}",
}


@pytest.mark.parametrize("body", MALFORMED_POSTBACKS.values(), ids=MALFORMED_POSTBACKS.keys())
def test_a_malformed_postback_with_a_valid_token_is_a_4xx_and_changes_nothing(client, submitted_task, body):
    before = Task.objects.values().get(pk=submitted_task.pk)
    events = submitted_task.events.count()
    payload = body(submitted_task)

    response = client.post(
        url("submission:callback_postback", submitted_task),
        payload if isinstance(payload, bytes) else payload.encode(),
        content_type="application/json",
    )

    assert 400 <= response.status_code < 500
    assert Task.objects.values().get(pk=submitted_task.pk) == before
    assert submitted_task.events.count() == events


def test_a_postback_whose_result_fields_cannot_be_read_completes_the_task_and_says_what_was_left_out(
    client, submitted_task
):
    result = [{**FINISHED[0], "fan_out_queries": 7, "input_tokens": -1}]
    response = client.post(
        url("submission:callback_postback", submitted_task),
        json.dumps(envelope(submitted_task, result=result)),
        content_type="application/json",
    )

    assert response.status_code == 200
    submitted_task.refresh_from_db()
    assert submitted_task.status == Task.Status.COMPLETED
    assert submitted_task.answer_text.startswith("Parks in France")
    assert submitted_task.fan_out_queries == [] and submitted_task.input_tokens is None
    error = submitted_task.events.get(kind=TaskEvent.Kind.ERROR)
    assert "fan_out_queries is not a list" in error.message and "input_tokens is not a count" in error.message
