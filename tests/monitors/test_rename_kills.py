"""Run now pressed on a page opened before the monitor was renamed (its old address), through the web views,
with the stand-in counting every POST over real HTTP: each task reaches the upstream once, also when the
web process handling the press is killed (SIGKILL) at each step and the person presses again."""

from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sandbox.models import SandboxTask
from tasks.models import Monitor, MonitorRun, Task
from tests.monitors.factories import make_monitor
from tests.monitors.test_kills import task_posts
from tests.monitors.test_renames import rename
from tests.submission.killing import run_killed_at
from tests.submission.test_kills import LEASE, finish, stand_in, worker  # noqa: F401 - stand_in is a fixture

pytestmark = pytest.mark.django_db(transaction=True)


def open_then_renamed(client, credential, user) -> tuple[Monitor, str]:
    """A monitor's page opened as "Hotels", then the monitor renamed "Hotels Europe": (it, the page's key)."""
    monitor = make_monitor(credential=credential, owner=user, name="Hotels", labels=["watched"])
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=timezone.now() + timedelta(days=365))
    key = client.get(reverse("monitors:detail", args=["hotels"])).context["run_now_key"]
    rename(client, monitor, "Hotels Europe")  # the form's labels are empty: given back, for `_label_batch`
    Monitor.objects.filter(pk=monitor.pk).update(
        next_run_at=timezone.now() + timedelta(days=365), labels=["watched"]
    )
    return monitor, key


def test_run_now_on_an_old_address_posts_each_task_to_the_upstream_once(
    stand_in,  # noqa: F811
    catalog,
    member_client,
    member_user,
):
    monitor, key = open_then_renamed(member_client, stand_in, member_user)

    member_client.post(reverse("monitors:run_now", args=["hotels"]), {"request_key": key})
    member_client.post(reverse("monitors:run_now", args=["hotels"]), {"request_key": key})  # a double click
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    run = MonitorRun.objects.get()
    assert run.monitor == monitor and run.state == MonitorRun.State.SENT
    assert Task.objects.count() == 6 and task_posts() == 2  # one task_post per provider's chunk
    assert Counter(SandboxTask.objects.values_list("data__tag", flat=True)) == Counter({monitor.tag: 6})


@pytest.mark.parametrize(
    "at",
    [
        "tasks.monitors.runs:run_execute",  # the press's run committed as planned, nothing written for it
        "tasks.monitors.runs:_label_batch",  # inside the run's transaction: rows written, rolled back
    ],
)
def test_run_now_on_an_old_address_killed_then_pressed_again_sends_each_task_once(
    stand_in,  # noqa: F811
    catalog,
    member_client,
    member_user,
    at,
):
    monitor, key = open_then_renamed(member_client, stand_in, member_user)
    url = reverse("monitors:run_now", args=["hotels"])
    press = (
        "from django.contrib.auth import get_user_model; from django.test import Client; "
        "client = Client(); client.force_login(get_user_model().objects.get(username='member')); "
        f"client.post({url!r}, {{'request_key': {key!r}}})"
    )
    run_killed_at(at, press)
    assert task_posts() == 0 and MonitorRun.objects.get().state == MonitorRun.State.PLANNED

    again = member_client.post(url, {"request_key": key}, follow=True).content.decode()  # pressed again
    assert "This Run now was pressed already" in again
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output

    run = MonitorRun.objects.get()
    assert run.monitor == monitor and run.state == MonitorRun.State.SENT
    assert Task.objects.count() == 6 and task_posts() == 2
    assert Counter(SandboxTask.objects.values_list("data__tag", flat=True)) == Counter({monitor.tag: 6})
