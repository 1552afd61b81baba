"""A scheduler killed (SIGKILL, a real process) at each step of a run's creation, then a scheduler and a
sending worker started again: every POST is counted at the stand-in (served over real HTTP by
live_server), and each of the run's tasks reaches it exactly once.

Steps: after the slot's run is committed (nothing planned yet); inside the run's transaction, its batch and
task rows written but not committed; after the run's commit. The worker's own kills (claim, POST,
record) are in tests/submission/test_kills.py: a run is an ordinary batch from there on.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox.models import SandboxRequest, SandboxTask
from tasks.models import Monitor, MonitorRun, Task
from tasks.monitors.scheduler import scheduler_tick
from tests.monitors.factories import make_monitor
from tests.prompt_templates.test_batch_groups_kills import NOTHING_CALLS, killed_at_plan
from tests.submission.killing import run_killed_at
from tests.submission.test_kills import LEASE, finish, stand_in, worker  # noqa: F401 - stand_in is a fixture

pytestmark = pytest.mark.django_db(transaction=True)


def task_posts() -> int:
    return SandboxRequest.objects.filter(method="POST", function="task_post").count()


def sent_run_with_two_failed(credential):
    """A monitor's run sent through a worker (2 chunks), then two of its tasks of one provider failed and
    the run done: (the run, its tasks, the two failed)."""
    from tasks.monitors.runs import run_now

    monitor = make_monitor(credential=credential, labels=["watched"])
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=timezone.now() + timedelta(days=365))
    run = run_now(monitor=monitor, user=None)[0]
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output
    first = list(Task.objects.filter(batch=run.batch).order_by("created_at"))
    failed = [task for task in first if task.provider == first[0].provider][:2]
    Task.objects.filter(pk__in=[task.pk for task in failed]).update(status=Task.Status.FAILED)
    MonitorRun.objects.filter(pk=run.pk).update(state=MonitorRun.State.DONE, failed_count=2)
    return run, first, failed


def retry_killed_at(at: str, run) -> None:
    """Retry pressed on `run` in a process killed at `at`."""
    run_killed_at(
        at,
        "from tasks.models import MonitorRun; from tasks.monitors.runs import run_retry; "
        f"run_retry(run=MonitorRun.objects.get(pk={str(run.pk)!r}), user=None)",
    )


@pytest.mark.parametrize(
    "at",
    [
        "tasks.monitors.scheduler:run_execute",  # the run committed as planned, nothing written for it
        "tasks.monitors.runs:_label_batch",  # inside the run's transaction: rows written, rolled back
        "tasks.monitors.scheduler:runs_refresh",  # after the run's commit
    ],
)
def test_a_scheduler_killed_at_each_step_of_a_run_sends_each_task_once(stand_in, catalog, at):  # noqa: F811
    monitor = make_monitor(credential=stand_in, labels=["watched"])
    due = monitor.next_run_at + timedelta(minutes=1)
    code = (
        "from datetime import datetime; from tasks.monitors.scheduler import scheduler_tick; "
        f"scheduler_tick(now=datetime.fromisoformat({due.isoformat()!r}))"
    )
    run_killed_at(at, code)
    assert task_posts() == 0  # a scheduler never posts

    scheduler_tick(now=due + timedelta(minutes=1))  # a scheduler started again
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    run = MonitorRun.objects.get()
    assert run.state == MonitorRun.State.SENT and run.kind == MonitorRun.Kind.SCHEDULED
    tasks = list(Task.objects.all())
    assert len(tasks) == 6 and {task.batch_id for task in tasks} == {run.batch_id}
    assert task_posts() == 2  # one task_post per provider's chunk: ChatGPT and Claude
    reached = Counter(SandboxTask.objects.values_list("data__tag", flat=True))
    assert reached == Counter({monitor.tag: 6})
    assert Counter(Task.objects.values_list("status", flat=True)) == Counter({Task.Status.SUBMITTED: 6})
    assert all(task.labels.filter(name="watched").exists() for task in tasks)
    # Ticking on sends nothing more for that slot.
    scheduler_tick(now=due + timedelta(minutes=5))
    assert Task.objects.count() == 6 and Monitor.objects.get().runs.count() == 1


@pytest.mark.parametrize(("call", "after"), [(1, True), (2, False), (2, True)])
def test_a_scheduler_killed_between_a_runs_two_providers_leaves_nothing_then_sends_each_task_once(
    stand_in,  # noqa: F811
    catalog,
    call,
    after,
):
    """A run's ChatGPT and Claude tasks are written in the one transaction of `run_execute`: killed after
    the first provider's rows, before or after the second's, nothing of the run's plan is committed (never
    a run with one provider's tasks); the next tick writes the whole run."""
    monitor = make_monitor(credential=stand_in)
    due = monitor.next_run_at + timedelta(minutes=1)
    code = killed_at_plan(call, after=after) + (
        "from datetime import datetime; from tasks.monitors.scheduler import scheduler_tick; "
        f"scheduler_tick(now=datetime.fromisoformat({due.isoformat()!r}))"
    )
    run_killed_at(NOTHING_CALLS, code)
    assert not Task.objects.exists() and MonitorRun.objects.get().state == MonitorRun.State.PLANNED

    scheduler_tick(now=due + timedelta(minutes=1))
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    assert MonitorRun.objects.get().state == MonitorRun.State.SENT
    assert Task.objects.count() == 6 and task_posts() == 2
    assert Counter(SandboxTask.objects.values_list("data__tag", flat=True)) == Counter({monitor.tag: 6})


@pytest.mark.parametrize(
    "at",
    [
        "tasks.monitors.runs:run_execute",  # the retry committed as planned, nothing written for it
        "tasks.monitors.runs:_label_batch",  # inside the retry's transaction: rows written, rolled back
    ],
)
def test_a_retry_killed_at_each_step_sends_each_task_once(stand_in, catalog, at):  # noqa: F811
    from tasks.monitors.runs import run_now

    monitor = make_monitor(credential=stand_in, labels=["watched"])
    # Not due in this test: only the retry runs.
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=timezone.now() + timedelta(days=365))
    stand_in.is_active = False
    stand_in.save(update_fields=["is_active"])
    failed = run_now(monitor=monitor, user=None)[0]
    assert failed.state == MonitorRun.State.FAILED
    stand_in.is_active = True
    stand_in.save(update_fields=["is_active"])
    code = (
        "from tasks.models import MonitorRun; from tasks.monitors.runs import run_retry; "
        f"run_retry(run=MonitorRun.objects.get(pk={str(failed.pk)!r}), user=None)"
    )
    run_killed_at(at, code)
    assert task_posts() == 0

    scheduler_tick()  # a scheduler executes the planned retry
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert retry.retry_of_id == failed.pk and retry.state == MonitorRun.State.SENT
    assert Task.objects.count() == 6 and task_posts() == 2
    assert Counter(SandboxTask.objects.values_list("data__tag", flat=True)) == Counter({monitor.tag: 6})
    # Pressing retry again (the page was stale) makes nothing more.
    from tasks.monitors.runs import run_retry

    again, made = run_retry(run=failed, user=None)
    assert again.pk == retry.pk and not made
    scheduler_tick()
    assert Task.objects.count() == 6 and MonitorRun.objects.count() == 2


@pytest.mark.parametrize(
    "at",
    [
        "tasks.monitors.runs:run_execute",  # the retry committed as planned, nothing written for it
        "tasks.monitors.runs:_label_batch",  # inside the retry's transaction: rows written, rolled back
    ],
)
def test_a_retry_of_failed_tasks_killed_at_each_step_resends_only_them_once(stand_in, catalog, at):  # noqa: F811
    """A run sent and answered, two of its tasks failed upstream: the retry, killed at each step and picked
    up by a scheduler, posts those two once more and nothing else."""

    run, first, failed = sent_run_with_two_failed(stand_in)
    assert task_posts() == 2
    retry_killed_at(at, run)
    assert task_posts() == 2

    scheduler_tick()  # a scheduler executes the planned retry
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert retry.state == MonitorRun.State.SENT and retry.task_count == 2
    assert Task.objects.count() == 8 and task_posts() == 3  # one more chunk: the two failed tasks
    reached = Counter(SandboxTask.objects.values_list("data__user_prompt", "data__model_name"))
    for task in first:
        assert reached[(task.user_prompt, task.model_name)] == (2 if task in failed else 1)
    scheduler_tick()
    assert Task.objects.count() == 8 and MonitorRun.objects.count() == 2


@pytest.mark.parametrize(
    "at",
    [
        "tasks.monitors.runs:run_execute",  # the retry committed as planned, nothing written for it
        "tasks.monitors.runs:_label_batch",  # inside the retry's transaction: rows written, rolled back
    ],
)
def test_a_retry_killed_then_pressed_again_sends_each_failed_task_once_more_at_once(stand_in, catalog, at):  # noqa: F811
    """The web process handling Retry is killed after the retry's row was committed; the person presses
    Retry again on the page still open, and again: the second press sends the retry at once (no waiting
    for a scheduler's tick), and each failed task reaches the upstream exactly once more, whatever the
    presses and the ticks after."""
    from tasks.monitors.runs import run_retry

    run, first, failed = sent_run_with_two_failed(stand_in)
    retry_killed_at(at, run)
    assert task_posts() == 2

    retry, made = run_retry(run=run, user=None)  # pressed again: no scheduler has ticked
    assert not made and retry.state == MonitorRun.State.SENT and retry.task_count == 2
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output
    assert run_retry(run=run, user=None) == (retry, False)  # and again
    scheduler_tick()
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    assert MonitorRun.objects.filter(kind=MonitorRun.Kind.RETRY).count() == 1
    assert Task.objects.count() == 8 and task_posts() == 3  # one more chunk: the two failed tasks
    reached = Counter(SandboxTask.objects.values_list("data__user_prompt", "data__model_name"))
    for task in first:
        assert reached[(task.user_prompt, task.model_name)] == (2 if task in failed else 1)


@pytest.mark.parametrize(
    "at",
    [
        "tasks.monitors.runs:run_execute",  # the press's run committed as planned, nothing written for it
        "tasks.monitors.runs:_label_batch",  # inside the run's transaction: rows written, rolled back
        "tasks.monitors.runs:_run_of_key",  # the second press, before it looks for the first's run
    ],
)
def test_run_now_killed_at_each_step_then_pressed_again_on_the_same_page_sends_each_task_once(
    stand_in,  # noqa: F811
    catalog,
    at,
):
    """The web process handling "Run now" is killed; the person presses the button again on the page still
    open (the same one-time key): one run, each of its tasks posted once by the worker."""
    from tasks.monitors.runs import run_now

    monitor = make_monitor(credential=stand_in, labels=["watched"])
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=timezone.now() + timedelta(days=365))
    key = "0123456789abcdef" * 2
    press = (
        "from tasks.models import Monitor; from tasks.monitors.runs import run_now; "
        f"run_now(monitor=Monitor.objects.get(pk={monitor.pk}), user=None, request_key={key!r})"
    )
    if at.endswith("_run_of_key"):  # a first press that went through, then a second one killed
        run_now(monitor=monitor, user=None, request_key=key)
    run_killed_at(at, press)
    assert task_posts() == 0

    run, made = run_now(monitor=monitor, user=None, request_key=key)  # pressed again
    assert not made
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    assert MonitorRun.objects.get().pk == run.pk and run.state == MonitorRun.State.SENT
    assert Task.objects.count() == 6 and task_posts() == 2
    assert Counter(SandboxTask.objects.values_list("data__tag", flat=True)) == Counter({monitor.tag: 6})


@pytest.mark.parametrize(
    "at",
    [
        "tasks.monitors.scheduler:run_execute",
        "tasks.monitors.runs:_label_batch",
        "tasks.monitors.scheduler:runs_refresh",
    ],
)
def test_an_every_n_days_monitors_first_run_killed_at_each_step_sends_each_task_once_then_waits_n_days(
    stand_in,  # noqa: F811
    catalog,
    at,
):
    """Saved without a start date, "every N days" first runs at the next time of day (cadence.py,
    `every_n_days_start`); its first run, killed at each step, sends each task once; the next is N days on."""
    from tasks.monitors.services import monitor_save
    from tests.monitors.factories import ROWS, interval_off_the_old_epoch, make_prompt_version

    at_time = (timezone.now() + timedelta(hours=1)).replace(second=0, microsecond=0)
    n = interval_off_the_old_epoch(at_time.date())  # counted from 2000-01-01, it would not run that day
    unsaved = Monitor(
        name="Hotels",
        template_version=make_prompt_version(),
        rows_text=ROWS,
        targets=[
            {"model_name": "gpt-4.1", "credential_id": stand_in.pk},
            {"model_name": "claude-3-5-haiku", "credential_id": stand_in.pk},
        ],
        tag="hotels",
        labels=["watched"],
        cadence=Monitor.Cadence.EVERY_N_DAYS,
        interval_days=n,
        time_of_day=at_time.time(),
        time_zone="UTC",
    )
    monitor = monitor_save(actor=None, unsaved=unsaved)
    assert monitor.next_run_at == at_time and monitor.start_date == at_time.date()
    due = monitor.next_run_at + timedelta(minutes=1)
    code = (
        "from datetime import datetime; from tasks.monitors.scheduler import scheduler_tick; "
        f"scheduler_tick(now=datetime.fromisoformat({due.isoformat()!r}))"
    )
    run_killed_at(at, code)
    assert task_posts() == 0

    scheduler_tick(now=due + timedelta(minutes=1))
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    assert task_posts() == 2 and Task.objects.count() == 6
    assert Counter(SandboxTask.objects.values_list("data__tag", flat=True)) == Counter({"hotels": 6})
    scheduler_tick(now=due + timedelta(days=n) - timedelta(hours=1))  # nothing due before the nth day
    assert Task.objects.count() == 6 and MonitorRun.objects.count() == 1
    assert Monitor.objects.get().next_run_at == at_time + timedelta(days=n)


@pytest.mark.parametrize(
    "at",
    [
        "tasks.monitors.runs:run_execute",  # the retry committed as planned, nothing written for it
        "tasks.monitors.runs:_label_batch",  # inside the retry's transaction: rows written, rolled back
    ],
)
def test_a_retry_after_the_tag_was_changed_killed_at_each_step_resends_under_the_old_tag_once(
    stand_in,  # noqa: F811
    catalog,
    at,
):
    """The monitor's tag is changed after a run with two failed tasks; the retry (killed at each step, then
    picked up by a scheduler, and pressed again) posts those two once more under the run's old tag, while
    a new run posts under the new one."""
    from tasks.monitors.runs import run_now, run_retry

    run, _first, _failed = sent_run_with_two_failed(stand_in)
    old_tag = run.monitor.tag
    Monitor.objects.filter(pk=run.monitor_id).update(tag="hotels-renamed")
    retry_killed_at(at, run)
    assert task_posts() == 2

    scheduler_tick()
    assert run_retry(run=run, user=None)[1] is False  # pressed again: the same retry
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    assert task_posts() == 3  # one more chunk: the two failed tasks
    assert Counter(SandboxTask.objects.values_list("data__tag", flat=True)) == Counter({old_tag: 8})
    retry = MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY)
    assert set(Task.objects.filter(batch=retry.batch).values_list("tag", flat=True)) == {old_tag}
    run_now(monitor=Monitor.objects.get(), user=None)
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output
    assert task_posts() == 5 and SandboxTask.objects.filter(data__tag="hotels-renamed").count() == 6


@pytest.mark.parametrize(
    ("stored", "at"),
    [
        # inside the press's transaction, the run not yet read done
        (MonitorRun.State.SENT, "tasks.monitors.runs:_run_refresh"),
        # the run written done and its retry committed as planned
        (MonitorRun.State.SENT, "tasks.monitors.runs:run_execute"),
        # inside the retry's transaction: rows written, rolled back
        (MonitorRun.State.SENT, "tasks.monitors.runs:_label_batch"),
        # done, its tasks failed after the tick wrote it (0 failed): the page offers Retry 2 failed
        (MonitorRun.State.DONE, "tasks.monitors.runs:run_execute"),
        (MonitorRun.State.DONE, "tasks.monitors.runs:_label_batch"),
    ],
)
def test_a_retry_of_a_run_no_tick_has_read_done_killed_at_each_step_resends_its_failed_tasks_once(
    stand_in,  # noqa: F811
    catalog,
    stored,
    at,
):
    """The run's last tasks failed and no tick has written it so yet; the page reads it from its tasks
    and offers Retry. The press, killed at each step, then pressed again: the two failed tasks reach the
    upstream once more, whatever the ticks after."""
    from tasks.monitors.runs import run_retry

    run, first, failed = sent_run_with_two_failed(stand_in)
    MonitorRun.objects.filter(pk=run.pk).update(state=stored, failed_count=0)
    Task.objects.filter(batch=run.batch).exclude(pk__in=[task.pk for task in failed]).update(
        status=Task.Status.COMPLETED
    )
    retry_killed_at(at, run)
    assert task_posts() == 2

    retry, _made = run_retry(run=run, user=None)  # pressed again
    assert retry.state == MonitorRun.State.SENT and retry.task_count == 2
    scheduler_tick()
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output
    assert run_retry(run=run, user=None) == (retry, False)
    scheduler_tick()

    assert MonitorRun.objects.get(pk=run.pk).state == MonitorRun.State.DONE
    assert Task.objects.count() == 8 and task_posts() == 3  # one more chunk: the two failed tasks
    reached = Counter(SandboxTask.objects.values_list("data__user_prompt", "data__model_name"))
    for task in first:
        assert reached[(task.user_prompt, task.model_name)] == (2 if task in failed else 1)
