"""The pipelined sender (a sending thread, the next chunk written while one is in flight) records exactly
what the sequential reference path (`submit_task_ids(..., pipelined=False)`: post, record, write the next)
records: the same statuses, events, costs and upstream ids, with the same number of POSTs, against the
stand-in over real HTTP."""

import pytest

from sandbox import faults
from sandbox.models import SandboxRequest, SandboxTask
from tasks.models import Task, TaskEvent
from tasks.submission import sending
from tests.submission.test_services import spec, stand_in  # noqa: F401 - the stand-in fixture

pytestmark = pytest.mark.django_db(transaction=True)


def _submit(credential, user, specs, *, pipelined: bool) -> tuple[list[tuple], int]:
    """Submit, then read back what was recorded, task by task in the order of `specs`, and forget it."""
    pks = sending.submit_task_ids(specs=specs, credential=credential, user=user, pipelined=pipelined)
    saved = Task.objects.in_bulk(pks)
    records = []
    for pk in pks:
        task = saved[pk]
        accepted = (
            SandboxTask.objects.filter(pk=task.upstream_task_id).first() if task.upstream_task_id else None
        )
        events = list(
            task.events.order_by("created_at", "pk").values_list(
                "kind", "status_code", "message", "cost_change"
            )
        )
        records.append(
            (
                task.user_prompt,
                task.status,
                task.status_code,
                task.status_message,
                task.charged,
                task.spend,
                task.spend_is_final,
                # the upstream id is the one the stand-in gave this task's own body
                accepted is not None and accepted.data["user_prompt"] == task.user_prompt,
                bool(task.upstream_task_id),
                events,
            )
        )
    posts = SandboxRequest.objects.filter(method="POST", function="task_post").count()
    TaskEvent.objects.all().delete()
    Task.objects.all().delete()
    SandboxTask.objects.all().delete()
    SandboxRequest.objects.all().delete()
    return records, posts


def _specs() -> list[sending.TaskSpec]:
    """250 tasks (three calls); every 37th one the stand-in refuses (temperature out of range)."""
    return [spec(f"Question {i}", **({"temperature": 5} if i % 37 == 5 else {})) for i in range(250)]


def test_both_paths_record_the_same_outcomes_for_a_mixed_submission(stand_in, admin_user):  # noqa: F811
    pipelined, posts = _submit(stand_in, admin_user, _specs(), pipelined=True)
    sequential, sequential_posts = _submit(stand_in, admin_user, _specs(), pipelined=False)

    assert pipelined == sequential
    assert posts == sequential_posts == 3
    assert {record[1] for record in pipelined} == {Task.Status.SUBMITTED, Task.Status.FAILED}
    assert sum(record[1] == Task.Status.FAILED for record in pipelined) == 7
    assert all(record[7] for record in pipelined if record[1] == Task.Status.SUBMITTED)


@pytest.mark.parametrize(
    ("mode", "times", "first_chunk", "later_chunks"),
    [
        ("http500", 1, Task.Status.UNKNOWN, Task.Status.FAILED),  # accepted, reply lost: nothing more sent
        ("rate_limit", 3, Task.Status.FAILED, Task.Status.FAILED),  # refused after its retries
        ("internal_error", 1, Task.Status.FAILED, Task.Status.SUBMITTED),  # each task 50000: the rest go on
    ],
)
def test_both_paths_record_the_same_outcomes_when_the_first_call_goes_wrong(
    stand_in,  # noqa: F811
    admin_user,
    mode,
    times,
    first_chunk,
    later_chunks,
):
    recorded = {}
    for pipelined in (True, False):
        faults.inject(mode, function="task_post", times=times)
        recorded[pipelined] = _submit(stand_in, admin_user, _specs(), pipelined=pipelined)

    assert recorded[True] == recorded[False]
    records, _ = recorded[True]
    assert {record[1] for record in records[:100]} == {first_chunk}
    refused = {i for i in range(100, 250) if i % 37 == 5}
    assert {records[i][1] for i in range(100, 250) if i not in refused} == {later_chunks}
