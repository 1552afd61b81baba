"""Every page an Admin can open answers hostile query strings with a 2xx, 3xx or 4xx, never a 5xx.

The crawl walks every URL of the URLconf (tests/url_routes.py: a new page is in it without touching this
file) and asks each one, as a page and as an htmx fragment, with query strings a person, a stale bookmark or
a scanner might send: unknown and repeated parameters, empty values, huge, negative and non-finite numbers,
malformed dates, 10 KB strings, Unicode, invalid UTF-8 (`%ff`) and NUL (`%00`, refused with a 400 by
tasks/middleware.py). The parameters are the ones the product's views read, each request a different
seeded mix of them, with a few valid values among the hostile ones so the code behind a form is reached
too. The test client re-raises an exception a view lets out, so a 500 fails with its traceback. An id in
the path that no row has (0, past a 64-bit integer) is a 404, asked for or posted to.

test_input_properties.py searches deeper (Hypothesis) through the forms of a few families of endpoints.
"""

import random
from urllib.parse import quote

import pytest
from django.urls import reverse

from tasks.builder.forms import TaskRequestForm
from tasks.history.forms import TaskFilterForm
from tasks.spend.forms import SpendFilterForm
from tasks.team.forms import AuditFilterForm
from tasks.upstream.providers import PROVIDERS
from tasks.visibility.forms import AnswersForm, TagSetForm
from tests.factories import make_catalog
from tests.url_routes import make_url_objects, project_routes, url_for, url_kwargs

pytestmark = pytest.mark.django_db

# Parameters the views read from the query string, beside their filter forms' fields.
READ_BY_VIEWS = {
    "part", "while", "q", "sort", "prompt", "state", "from_task", "run_again_of", "template", "version",
    "page", "archived", "id", "all", "back", "title", "tag", "set", "show", "role", "next", "switch",
    "chain-0-role", "chain-0-message", "chain-1-message", "variables_shown", "var_dish", "provider",
}  # fmt: skip
FORMS = (TaskFilterForm, SpendFilterForm, AuditFilterForm, AnswersForm, TagSetForm, TaskRequestForm)
PARAMS = sorted(
    READ_BY_VIEWS
    | {name for form in FORMS for name in form.base_fields}
    | {name for rules in PROVIDERS.values() for name in rules.field_names}
)
UNKNOWN = ["utm_source", "x", "__proto__", "fields[]", "a.b", "🎈", "%ff", "page[size]", "q\u202e"]

# Already percent-encoded: the raw bytes go on the wire as a client would send them.
HOSTILE = [
    "",
    "%20",
    "9" * 40,
    "-1",
    "-99999999999999999999",
    "0",
    "1.5",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "-Infinity",
    "0x10",
    "2026-13-45",
    "0000-00-00",
    "99999-01-01",
    "2026-02-30",
    "1970-01-01T25%3A61",
    "-2026-01-01",
    quote("x" * 10240),
    quote("🎈ü中文\u202e\u2028\ufeff" * 20),
    "%ff%fe%c3%28",
    quote("<script>alert(1)</script>"),
    quote("../../etc/passwd"),
    quote("'; DROP TABLE x; --"),
    quote("00000000-0000-0000-0000-000000000000"),
    "%5B%5D",
    "%7B%7D",
    "~",
    "%25",
]
# Values the forms accept, so that some requests get past a form to the code behind it.
VALID = [
    "custom", "this_month", "last_7_days", "day", "week", "month", "1", "2", "on", "true", "2026-01-01",
    "2026-12-31", "0001-01-01", "9999-12-31", "chat_gpt", "claude", "gemini", "perplexity", "mentioned",
    "position", "team-a", "csv", "cost", "-cost", "created", "failed", "completed", "pending", "active",
    "paused",
]  # fmt: skip
MIXES_PER_ROUTE = 12

ROUTES = [
    r
    for r in project_routes()
    if r.name not in {"logout", "submission:callback_pingback", "submission:callback_postback"}
]


def hostile_queries(seed: str) -> list[str]:
    """The query strings one route is asked with: the same for a route from run to run."""
    rng = random.Random(seed)
    queries = [
        "&".join(f"{quote(name)}={value}" for name in PARAMS) for value in HOSTILE
    ]  # every parameter at once, one value each time
    for _ in range(MIXES_PER_ROUTE):
        names = rng.sample(PARAMS, rng.randint(1, 8)) + rng.sample(UNKNOWN, rng.randint(0, 2))
        pairs = []
        for name in names:
            for _repeat in range(rng.choice([1, 1, 1, 2, 3])):
                value = rng.choice(HOSTILE) if rng.random() < 0.7 else quote(rng.choice(VALID))
                pairs.append(f"{name if name in UNKNOWN else quote(name)}={value}")
        queries.append("&".join(pairs))
    return [*queries, "&&&", "=", "a", "a=1=2", "&".join(["q=1"] * 500)]


NUL_QUERIES = ["%00", "q=%00", "%00=1", "page=1&q=a%00b"]


@pytest.fixture
def url_objects(team_admin):
    make_catalog()
    return make_url_objects()


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_no_page_fails_on_a_hostile_query_string(team_admin_client, url_objects, route):
    url = url_for(route, url_objects)
    if team_admin_client.get(url).status_code == 405:  # POST only: the query is never read
        queries = hostile_queries(route.name)[:2]
    else:
        queries = hostile_queries(route.name)

    for index, query in enumerate(queries):
        headers = {"HX-Request": "true"} if index % 2 else {}  # every other request asks for the fragment
        response = team_admin_client.get(f"{url}?{query}", headers=headers)
        if response.streaming:
            b"".join(response.streaming_content)  # a streamed export fails while it is read
        assert response.status_code < 500, (url, headers, query[:300], response.status_code)
    for query in NUL_QUERIES:
        for headers in ({}, {"HX-Request": "true"}):
            response = team_admin_client.get(f"{url}?{query}", headers=headers)
            assert response.status_code == 400, (url, headers, query)


INT_ROUTES = [r for r in ROUTES if any(f"<int:{p}>" in r.route for p in r.params)]


@pytest.mark.parametrize("number", ["0", "9223372036854775808", "9" * 30], ids=["zero", "past int64", "huge"])
def test_an_id_in_the_path_that_no_row_has_is_a_404_never_a_5xx(team_admin_client, url_objects, number):
    """An id past any column's range (SQLite and PostgreSQL alike), asked for or posted to: like any id of
    no row, a 404 (or a 405 where the URL takes only the other method)."""
    for route in INT_ROUTES:
        kwargs = url_kwargs(route, url_objects)
        kwargs.update({p: number for p in route.params if f"<int:{p}>" in route.route})
        url = reverse(route.name, kwargs=kwargs)
        for method in ("get", "post"):
            response = getattr(team_admin_client, method)(url, headers={"HX-Request": "true"})
            assert response.status_code in (404, 405), (method, url, response.status_code)
