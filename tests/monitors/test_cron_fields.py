"""A cron expression is five fields, minute to weekday, as cron reads it: cronsim also takes a sixth, the
seconds, which would make a monitor due every few seconds (a paid run at each scheduler tick)."""

import pytest
from django.urls import reverse

from tasks.models import Monitor
from tests.monitors.factories import make_prompt_version
from tests.monitors.test_views import form_data

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("cron", ["*/10 * * * * *", "0 0 9 * * *"])
def test_a_cron_expression_with_a_seconds_field_is_a_field_error_with_the_input_kept(
    member_client, credential, catalog, cron
):
    version = make_prompt_version()
    response = member_client.post(
        reverse("monitors:create"), form_data(version, cadence="cron", cron=cron, name="Every ten seconds")
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert (
        f"The cron expression “{cron}” has 6 fields: give 5 (minute, hour, day of month, month, day of "
        "week); a monitor runs at most once a minute."
    ) in page.replace("&#x27;", "'")
    assert f'value="{cron}"' in page and not Monitor.objects.exists()


def test_a_blank_cron_expression_asks_for_one(member_client, credential, catalog):
    version = make_prompt_version()
    response = member_client.post(reverse("monitors:create"), form_data(version, cadence="cron", cron=""))
    assert "Give a cron expression: 5 fields" in response.content.decode()
    assert not Monitor.objects.exists()
