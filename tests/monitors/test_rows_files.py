"""A monitor's rows uploaded as Excel saves them: semicolons, UTF-16 with tabs, CR line ends; each row runs,
and the stored rows read with plain line ends."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks.models import Monitor, MonitorRun
from tasks.monitors.scheduler import scheduler_tick
from tests.monitors.factories import make_prompt_version
from tests.monitors.test_views import form_data

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "data",
    [
        "city;country\r\nParis;France\r\nBerlin;Germany\r\n".encode("cp1252"),
        "city\tcountry\r\nParis\tFrance\r\nBerlin\tGermany\r\n".encode("utf-16"),
        b"city,country\rParis,France\rBerlin,Germany\r",
    ],
    ids=["excel-semicolons", "excel-unicode-text", "old-mac"],
)
def test_a_monitors_uploaded_rows_each_run(member_client, credential, catalog, data):
    upload = SimpleUploadedFile("rows.csv", data, content_type="text/csv")
    response = member_client.post(
        reverse("monitors:create"), {**form_data(make_prompt_version(), rows_text=""), "rows_file": upload}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    monitor = Monitor.objects.get()
    assert "\r" not in monitor.rows_text
    scheduler_tick(now=monitor.next_run_at + timedelta(minutes=1))
    run = MonitorRun.objects.get()
    assert run.reason == "" and run.task_count == 4  # 2 rows × 2 models
    prompts = set(run.batch.tasks.values_list("user_prompt", flat=True))
    assert prompts == {"What is the best hotel in Paris?", "What is the best hotel in Berlin?"}
