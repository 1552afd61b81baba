"""Property-based tests (Hypothesis): whatever the upstream sends, reading it never raises, a task always
ends in a recorded state, and a callback with a valid token answers 2xx/4xx, never 500.

Run on SQLite and PostgreSQL like the rest of the suite. Example counts are modest so each test takes a
few seconds; the database tests make a fresh task per example.
"""

import gzip
import json
import math
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tasks.models import Credential, Task, TaskEvent
from tasks.submission import callbacks, collection
from tasks.upstream.outcomes import StatusClass, UpstreamMalformed, parse_task_outcome
from tasks.upstream.results import parse_result
from tests.factories import make_task

COUNT_MAX = 2**31 - 1  # PositiveIntegerField on every database
MONEY_MAX = Decimal("10000")
FAST = settings(max_examples=150, deadline=None, database=None)
WITH_DATABASE = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ----------------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and ±Infinity included
    | st.text()  # NUL and lone surrogates included
    | st.sampled_from(["", "0", "20000", "NaN", "1e30", "-1", "abc", "\x00", "\ud800", "http://[::1"])
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def anything_or(strategy):
    """Mostly the expected shape, sometimes anything at all."""
    return strategy | json_like


annotation = anything_or(
    st.fixed_dictionaries(
        {},
        optional={
            "url": anything_or(st.sampled_from(["https://example.org/a", "http://[::1", "not a url", ""])),
            "title": json_like,
            "start_index": json_like,
            "end_index": json_like,
            "text": json_like,
        },
    )
)
section = anything_or(
    st.fixed_dictionaries(
        {},
        optional={
            "type": json_like,
            "text": json_like,
            "annotations": anything_or(st.lists(annotation, max_size=3)),
        },
    )
)
item = anything_or(
    st.fixed_dictionaries(
        {},
        optional={
            "type": anything_or(st.sampled_from(["message", "reasoning"])),
            "sections": anything_or(st.lists(section, max_size=3)),
        },
    )
)
result_first = st.fixed_dictionaries(
    {},
    optional={
        "model_name": json_like,
        "input_tokens": json_like,
        "output_tokens": json_like,
        "reasoning_tokens": json_like,
        "web_search": json_like,
        "money_spent": json_like,
        "items": anything_or(st.lists(item, max_size=3)),
        "fan_out_queries": anything_or(st.lists(json_like, max_size=3)),
    },
)
results = st.none() | st.lists(anything_or(result_first), max_size=2) | json_like
status_codes = st.sampled_from([20000] * 6 + [20100, 40601, 40602, 40501, 40401, 40100, 50000])


def mostly(strategy):
    """The expected shape three times in four, anything at all otherwise."""
    return st.integers(0, 3).flatmap(lambda n: strategy if n else json_like)


def task_objects(upstream_id: str):
    """Task objects about `upstream_id`: mostly readable ones whose result holds anything (so results get
    applied), some with any field of any shape, some with fields missing."""
    fields = {
        "status_code": status_codes,
        "status_message": st.text(max_size=40),
        "cost": st.none() | st.sampled_from([0, 0.0102, "0.0031"]) | st.floats(min_value=0, max_value=1),
        "data": st.none() | st.just({}),
        "result": mostly(st.lists(mostly(result_first), min_size=1, max_size=2)),
    }
    readable = st.fixed_dictionaries({"id": st.just(upstream_id), **fields})
    odd = st.fixed_dictionaries(
        {"id": st.just(upstream_id)}, optional={k: mostly(v) for k, v in fields.items()}
    )
    return st.integers(0, 9).flatmap(lambda n: readable if n < 7 else odd if n < 9 else json_like)


# --- reading a result ----------------------------------------------------------------------------------


def _storable(text: str) -> bool:
    text.encode("utf-8")  # raises on a lone surrogate
    return "\x00" not in text


@FAST
@given(results)
def test_parse_result_never_raises_and_returns_storable_values(result):
    parsed = parse_result(result)

    for count in (parsed.input_tokens, parsed.output_tokens, parsed.reasoning_tokens):
        assert count is None or (type(count) is int and 0 <= count <= COUNT_MAX)
    assert parsed.money_spent is None or (
        parsed.money_spent.is_finite() and 0 <= parsed.money_spent < MONEY_MAX
    )
    assert parsed.web_search_used in (None, True, False)
    assert len(parsed.resolved_model_name) <= 100
    texts = [parsed.resolved_model_name, parsed.answer_text, parsed.reasoning_text, *parsed.fan_out_queries]
    for citation in parsed.citations:
        texts += [citation["title"], citation["url"], citation["domain"], citation["text"]]
    assert all(isinstance(text, str) and _storable(text) for text in texts)
    json.dumps(parsed.citations, allow_nan=False)


@FAST
@given(task_objects("07171158-1535-0612-0000-edcdefadd850") | json_like)
def test_parse_task_outcome_returns_a_storable_outcome_or_says_the_object_is_not_usable(raw):
    try:
        outcome = parse_task_outcome(raw)
    except UpstreamMalformed:
        return
    assert type(outcome.status_code) is int and 0 <= outcome.status_code <= 2**31 - 1
    assert outcome.cost.is_finite() and 0 <= outcome.cost < Decimal("10000")
    assert isinstance(outcome.status_message, str)
    assert outcome.result is None or isinstance(outcome.result, list)
    assert isinstance(outcome.status_class, StatusClass)


# --- recording an outcome ------------------------------------------------------------------------------


@pytest.fixture
def credential(db):
    credential = Credential(name="AIsa", kind=Credential.Kind.AISA)
    credential.set_secret("sandbox-key-long-enough")
    credential.save()
    return credential


def _new_task(credential) -> Task:
    return make_task(credential=credential, status=Task.Status.SUBMITTED)


def _loads_back(task: Task) -> Task:
    """The task read back whole (a value SQLite stored but cannot convert back would raise here)."""
    task = Task.objects.get(pk=task.pk)
    for name in ("cost", "spend", "money_spent", "charged", "result", "citations", "fan_out_queries"):
        getattr(task, name)
    list(task.events.values_list("message", "status_code", "cost_change"))
    return task


@WITH_DATABASE
@given(data=st.data())
def test_task_apply_outcome_never_raises_and_leaves_the_task_in_a_recorded_state(credential, data):
    task = _new_task(credential)
    raw = data.draw(task_objects(task.upstream_task_id))
    try:
        outcome = parse_task_outcome(raw)
    except UpstreamMalformed:
        event("not a usable task object")
        return  # a poll records this as an error event (see test_collection); nothing to apply
    event(f"status class {outcome.status_class}")
    events_before = task.events.count()

    collection.task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.POLLED)

    task = _loads_back(task)
    assert task.events.count() > events_before
    if outcome.status_class == StatusClass.DONE:
        assert task.status in (Task.Status.COMPLETED, Task.Status.FAILED)
        assert task.spend_is_final and task.spend.is_finite()
    elif outcome.status_class in (StatusClass.INVALID, StatusClass.NOT_FOUND):
        assert task.status == Task.Status.FAILED
    else:
        assert task.status in (Task.Status.SUBMITTED, Task.Status.PENDING)


# --- callbacks -----------------------------------------------------------------------------------------


def _postback_url(task: Task) -> str:
    return reverse(
        "submission:callback_postback",
        kwargs={"task_id": task.pk, "token": callbacks.callback_token(task.pk)},
    )


def _snapshot(task: Task) -> tuple:
    return Task.objects.values().get(pk=task.pk), task.events.count()


def _finite(value):
    """`value` with NaN and ±Infinity replaced by None: JSON a strict parser accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def _bodies(upstream_id: str):
    """Postback bodies: mostly strict JSON envelopes holding task objects about this task, some with NaN
    as Python writes it, some JSON of any shape, some bytes that are not JSON, some gzip-compressed."""
    envelope = st.fixed_dictionaries(
        {
            "status_code": mostly(status_codes),
            "tasks": mostly(st.lists(task_objects(upstream_id), max_size=2)),
        }
    )
    strict = envelope.map(lambda value: json.dumps(_finite(value)).encode())
    with_nan = envelope.map(lambda value: json.dumps(value).encode())
    shapeless = json_like.map(lambda value: json.dumps(value).encode())
    choices = [strict] * 5 + [with_nan, shapeless, st.binary(max_size=200), strict.map(gzip.compress)]
    return st.integers(0, len(choices) - 1).flatmap(lambda n: choices[n])


@WITH_DATABASE
@given(data=st.data())
def test_any_postback_with_a_valid_token_is_2xx_or_4xx_and_a_4xx_changes_nothing(credential, data):
    task = _new_task(credential)
    body = data.draw(_bodies(task.upstream_task_id))
    before = _snapshot(task)

    response = Client(raise_request_exception=False).post(
        _postback_url(task), body, content_type="application/json"
    )

    assert 200 <= response.status_code < 300 or 400 <= response.status_code < 500, response.content[:200]
    event(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        assert _snapshot(task) == before
    else:
        _loads_back(task)


@WITH_DATABASE
@given(
    query=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
    method=st.sampled_from(["get", "post", "head", "put", "delete"]),
    token=st.none()
    | st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=50),
)
def test_any_pingback_is_2xx_or_4xx_and_changes_nothing(credential, query, method, token):
    task = _new_task(credential)
    target = reverse(
        "submission:callback_pingback",
        kwargs={"task_id": task.pk, "token": token if token else callbacks.callback_token(task.pk)},
    )
    before = _snapshot(task)

    response = getattr(Client(raise_request_exception=False), method)(target, query)

    assert 200 <= response.status_code < 300 or 400 <= response.status_code < 500
    assert _snapshot(task) == before


def test_the_strategies_reach_deep_enough_to_complete_a_task(credential):
    """A guard on the strategies themselves: a well-formed body through the same path completes a task."""
    task = _new_task(credential)
    result = [{"money_spent": 0.0286, "items": [{"type": "message", "sections": [{"text": "Hello"}]}]}]
    body = {"tasks": [{"id": task.upstream_task_id, "status_code": 20000, "cost": 0, "result": result}]}
    response = Client().post(_postback_url(task), json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert Task.objects.get(pk=task.pk).status == Task.Status.COMPLETED
    assert not math.isnan(float(Task.objects.get(pk=task.pk).cost))
