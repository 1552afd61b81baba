"""Every form in the product labels its fields the same way: the label as written, no trailing colon
("Name", not Django's default "Name:"), whether a page renders a field with `as_field_group`, `label_tag`
or the builder's own markup."""

import re
from html import unescape
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group

from tasks.models import AlertDestination, Brand, BrandSet, Budget
from tests.factories import make_catalog, make_task
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


class _Labels(HTMLParser):
    """The text of every <label> and <legend> in a page."""

    def __init__(self):
        super().__init__()
        self.labels: list[str] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("label", "legend"):
            self._open.append([])

    def handle_endtag(self, tag):
        if tag in ("label", "legend") and self._open:
            self.labels.append(re.sub(r"\s+", " ", unescape("".join(self._open.pop()))).strip())

    def handle_data(self, data):
        for text in self._open:
            text.append(data)


def _labels(html: str) -> list[str]:
    parser = _Labels()
    parser.feed(html)
    return parser.labels


@pytest.fixture
def pages(team_admin, credential):
    """The URL of every page with a form, with what those forms need to show all their fields."""
    make_catalog()
    team_admin.groups.add(*Group.objects.all())
    unknown = make_task(credential=credential, submitted_by=team_admin, status="unknown")
    monitor = make_monitor(credential=credential, owner=team_admin)
    AlertDestination.objects.create(monitor=monitor, kind="email", emails="ops@example.com")
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=50, created_by=team_admin)
    brand_set = BrandSet.objects.create(name="Hotels")
    brand = Brand.objects.create(brand_set=brand_set, name="Ritz", is_ours=True)
    template = monitor.template_version.template
    return [
        "/new/",
        "/tasks/",
        f"/tasks/{unknown.pk}/",
        "/monitors/new/",
        f"/monitors/{monitor.slug}/",
        f"/monitors/{monitor.slug}/edit/",
        "/alerts/",
        f"/templates/{template.pk}/",
        f"/templates/{template.pk}/batch/",
        "/spend/",
        "/budgets/new/",
        f"/budgets/{budget.pk}/",
        "/credentials/new/",
        f"/credentials/{credential.pk}/",
        "/people/",
        "/visibility/sets/new/",
        f"/visibility/sets/{brand_set.pk}/edit/",
        f"/visibility/sets/{brand_set.pk}/brands/new/",
        f"/visibility/sets/{brand_set.pk}/brands/{brand.pk}/",
        "/accounts/password_change/",
    ]


def test_no_form_label_ends_with_a_colon(client, team_admin, pages):
    labelled = 0
    response = client.get("/accounts/login/")
    colons = [f"/accounts/login/: {label!r}" for label in _labels(response.text) if label.endswith(":")]
    labelled += len(_labels(response.text))
    client.force_login(team_admin)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        labels = _labels(response.text)
        labelled += len(labels)
        colons += [f"{url}: {label!r}" for label in labels if label.rstrip(" *").endswith(":")]
    assert labelled > 100  # the pages do show their forms
    assert not colons, "Labels ending with a colon:\n" + "\n".join(colons)
