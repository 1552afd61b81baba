"""Visibility figures, the answers behind each, pages, CSV, brand set forms and the completion hook."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.tasks import default_task_backend
from django.urls import reverse
from django.utils import timezone

from tasks.models import Brand, BrandMention, BrandSet, BrandSetTag, TaskEvent
from tasks.spend import periods
from tasks.submission import collection
from tasks.upstream.outcomes import StatusClass, TaskOutcome
from tasks.visibility.changes import _notes, answer_changes
from tasks.visibility.forms import BrandForm, BrandSetForm
from tasks.visibility.jobs import recompute_mentions
from tasks.visibility.mentions import mentions_recompute
from tasks.visibility.selectors import AnswerScope, answers_behind, visibility_report, visibility_url_for_tag
from tests.factories import make_task
from tests.visibility.conftest import ANSWERS, CITATIONS, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def four(brand_set):
    """The four sample answers, one each, today."""
    today = timezone.localdate()
    tasks = [
        make_task(
            tag="parks", answer_text=text, citations=cites, created_at=at(today, 1 + i), provider=provider
        )
        for i, (text, cites, provider) in enumerate(
            zip(ANSWERS, CITATIONS, ["chat_gpt", "claude"] * 2, strict=True)
        )
    ]
    mentions_recompute(brand_set_id=brand_set.pk)
    return tasks


def _report(brand_set, **kwargs):
    return visibility_report(
        brand_set=brand_set, scope=AnswerScope(), period=periods.period_preset("last_7"), **kwargs
    )


def test_visibility_share_of_voice_position_and_citation_share(brand_set, four):
    report = _report(brand_set)

    lines = {line.brand.name: line for line in report.lines}
    assert report.answers == 4
    assert lines["Acme"].visibility == Decimal("0.75")
    assert lines["Acme"].sums["mentions"] == 4  # "ACMÉ" counts, the link to globex.com does not
    assert lines["Acme"].share_of_voice == Decimal(4) / Decimal(9)
    assert lines["Acme"].average_position == Decimal("1.67")
    assert lines["Globex"].visibility == Decimal("0.5")
    assert lines["Umbrella"].sums["mentioned"] == 1
    assert lines["Acme"].sums["first_paragraph"] == 3  # answer 3 is a single paragraph
    assert [(g.key, g.citations) for g in report.citation_groups] == [
        ("ours", 2),
        ("competitors", 1),
        ("others", 2),
    ]
    assert [c.key for c in report.by_model] == ["chat_gpt/gpt-4.1-mini", "claude/claude-sonnet-4-0"]
    assert lines["Acme"].cost_per_answer == (
        sum(t.spend for t in four if "Acme" in t.answer_text or "ACM" in t.answer_text) / 3
    ).quantize(Decimal("0.000001"))


def test_every_figure_opens_exactly_the_answers_behind_it(client, member_user, brand_set, answers):
    client.force_login(member_user)
    report = _report(brand_set, granularity="day")
    links = [(line.url, line.mentioned) for line in report.lines]
    links += [(line.cited_url, line.sums["cited"]) for line in report.lines]
    links += [(line.first_paragraph_url, line.sums["first_paragraph"]) for line in report.lines]
    links += [(column.url, column.answers) for column in report.over_time + report.by_model]
    links += [(line.url, line.mentioned) for column in report.by_model for line in column.lines]
    links.append((report.answers_url, report.answers))

    for url, count in links:
        response = client.get(url)
        assert response.status_code == 200
        shown = re.search(r"<h1>(\d+) answer", response.content.decode())
        assert int(shown.group(1)) == count, url


def test_the_answers_page_highlights_mentions_and_escapes_the_answer(client, member_user, brand_set):
    make_task(tag="parks", answer_text='<img src=x onerror="alert(1)"> Acme rocks', created_at=timezone.now())
    mentions_recompute(brand_set_id=brand_set.pk)
    client.force_login(member_user)
    acme = brand_set.brands.get(name="Acme")

    response = client.get(
        reverse("visibility:answers", args=[brand_set.pk]),
        {"brand": acme.pk, "figure": "mentioned", "date_from": timezone.localdate().isoformat()},
    )

    html = response.content.decode()
    assert "<img src=x" not in html
    assert (
        '<p>&lt;img src=x onerror="alert(1)"&gt; <mark class="mention mention-ours">Acme</mark> rocks</p>'
        in html
    )


def test_the_csv_equals_the_page(client, team_admin, brand_set, answers):
    client.force_login(team_admin)
    url = reverse("visibility:set_page", args=[brand_set.pk])
    page = client.get(url, {"period": "last_30", "by": "week"}).content.decode()
    export = client.get(
        reverse("visibility:set_export", args=[brand_set.pk]), {"period": "last_30", "by": "week"}
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))

    totals = {row["brand"]: row for row in rows if row["section"] == "total"}
    for brand in ("Acme", "Globex", "Initech", "Umbrella"):
        row = re.search(rf'<tr data-brand="{brand}">(.*?)</tr>', page, re.S).group(1)
        shown_mentioned = re.search(r'data-figure="mentioned">(\d+)<', row).group(1)
        shown_visibility = re.search(r'data-figure="visibility">([^<]+)<', row).group(1)
        assert totals[brand]["mentioned"] == shown_mentioned
        assert f"{Decimal(totals[brand]['visibility']) * 100:.1f}%" == shown_visibility
    weeks = [row for row in rows if row["section"] == "week"]
    assert (
        len(weeks)
        == len(
            re.findall(
                r"<tr><th scope=\"row\">", page.split('data-table="over-time"')[1].split("</table>")[0]
            )
        )
        * 4
    )


def test_completing_a_task_extracts_its_mentions_once(brand_set, credential):
    task = make_task(tag="parks", status="submitted", credential=credential)
    outcome = TaskOutcome(
        id=task.upstream_task_id,
        status_code=20000,
        status_message="Ok.",
        status_class=StatusClass.DONE,
        cost=Decimal("0.0032"),
        data={},
        result=[
            {
                "money_spent": 0.003,
                "items": [{"type": "message", "sections": [{"type": "text", "text": "Globex, then Acme."}]}],
            }
        ],
        raw={},
    )

    collection.task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.POLLED)
    collection.task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.POLLED)

    rows = {r.brand.name if r.brand else None: r for r in BrandMention.objects.filter(task=task)}
    assert set(rows) == {None, "Globex", "Acme"}
    assert (rows["Globex"].position, rows["Acme"].position) == (1, 2)
    assert rows[None].spend == Decimal("0.0032")


def test_an_untagged_or_unattached_task_gets_no_mentions(brand_set):
    make_task(tag="elsewhere", answer_text="Acme")
    mentions_recompute(brand_set_id=brand_set.pk)
    assert not BrandMention.objects.exists()


def test_a_brand_set_is_created_and_its_answers_read_in_the_background(
    client, member_user, answers, django_capture_on_commit_callbacks
):
    client.force_login(member_user)
    default_task_backend.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("visibility:set_create"), {"name": "Rivals", "tags": "parks\nother\n"})
    new = BrandSet.objects.get(name="Rivals")
    assert response.status_code == 302
    assert set(new.tag_links.values_list("tag", flat=True)) == {"parks", "other"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("visibility:brand_create", args=[new.pk]),
            {"name": "Acme", "is_ours": "on", "aliases": "", "domains": "acme.com"},
        )
    assert response.status_code == 302
    queued = [r for r in default_task_backend.results if r.task.name == "recompute_mentions"]
    assert [r.args for r in queued] == [[new.pk], [new.pk]]

    recompute_mentions.call(*queued[-1].args)  # what the worker runs

    assert BrandMention.objects.filter(brand_set=new, brand__name="Acme").count() == len(
        [t for t in answers if "Acme" in t.answer_text or "ACM" in t.answer_text]
    )


def test_a_name_taken_between_the_forms_check_and_the_save_is_a_field_error_not_a_500(
    client, member_user, brand_set
):
    """Save pressed twice, or in two tabs at once: both pass the form's check, the database refuses one."""
    client.force_login(member_user)
    unchecked_set = mock.patch.object(BrandSetForm, "clean_name", lambda form: form.cleaned_data["name"])
    unchecked_brand = mock.patch.multiple(
        BrandForm, clean_name=lambda form: form.cleaned_data["name"], clean=lambda form: form.cleaned_data
    )
    globex = brand_set.brands.get(name="Globex")

    with unchecked_set, unchecked_brand:
        new_set = client.post(reverse("visibility:set_create"), {"name": "Parks", "tags": "mine"})
        new_brand = client.post(reverse("visibility:brand_create", args=[brand_set.pk]), {"name": "Globex"})
        renamed = client.post(
            reverse("visibility:brand_edit", args=[brand_set.pk, globex.pk]), {"name": "Initech"}
        )

    assert new_set.status_code == 200
    assert new_set.context["form"].errors["name"] == ["Another brand set has this name."]
    assert "mine</textarea>" in new_set.content.decode()
    for response in (new_brand, renamed):
        assert response.status_code == 200
        assert response.context["form"].errors["name"] == ["This set already has a brand with this name."]
    assert BrandSet.objects.count() == 1 and not BrandSetTag.objects.filter(tag="mine").exists()
    assert sorted(brand_set.brands.values_list("name", flat=True)) == [
        "Acme",
        "Globex",
        "Initech",
        "Umbrella",
    ]


def test_a_tag_added_in_two_tabs_at_once_is_read_once_and_no_server_error(client, member_user, brand_set):
    """Two tabs add the same tag to a set: the other tab's link lands after this save has read the set's
    tags and before it adds its own."""
    client.force_login(member_user)
    other_tab_saved = False

    def other_tab_first(execute, sql, params, many, context):
        nonlocal other_tab_saved
        if not other_tab_saved and sql.startswith("INSERT") and BrandSetTag._meta.db_table in sql:
            other_tab_saved = True
            BrandSetTag.objects.create(brand_set=brand_set, tag="hotels")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(other_tab_first):
        response = client.post(
            reverse("visibility:set_edit", args=[brand_set.pk]), {"name": "Parks", "tags": "parks\nhotels"}
        )

    assert other_tab_saved
    assert response.status_code == 302
    assert sorted(brand_set.tag_links.values_list("tag", flat=True)) == ["hotels", "parks"]


def test_bad_brand_input_is_shown_back_not_saved(client, member_user, brand_set):
    client.force_login(member_user)
    response = client.post(
        reverse("visibility:brand_create", args=[brand_set.pk]),
        {"name": "Acme", "aliases": "re:(unclosed\nOK", "domains": "not a domain"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert (
        "already has a brand" in html and "not a valid regular expression" in html and "Not a domain" in html
    )
    assert "re:(unclosed" in html
    assert brand_set.brands.count() == 4


@pytest.mark.parametrize(
    ("name", "aliases", "field", "message"),
    [
        ("ACMÉ", "", "name", "Acme already goes by “ACMÉ” (case and accents do not count)."),
        ("Newco", "Newco Parks\nglobex", "aliases", "Globex already goes by “globex” (case and accents"),
        ("Acme Parks", "", "name", "Acme already goes by “Acme Parks”"),  # Acme's alias
    ],
)
def test_a_name_or_alias_another_brand_goes_by_is_refused_at_its_field(
    client, member_user, brand_set, name, aliases, field, message
):
    """The matcher gives a name shared by two brands to one of them: the other would never be found."""
    client.force_login(member_user)

    response = client.post(
        reverse("visibility:brand_create", args=[brand_set.pk]), {"name": name, "aliases": aliases}
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    assert f'value="{name}"' in response.content.decode()
    assert brand_set.brands.count() == 4
    umbrella = brand_set.brands.get(name="Umbrella")
    edited = client.post(
        reverse("visibility:brand_edit", args=[brand_set.pk, umbrella.pk]),
        {"name": "Umbrella", "aliases": "UMBRELLA corp\numbrella"},  # its own name again is fine
    )
    assert edited.status_code == 302


def test_a_pattern_that_backtracks_without_end_is_refused_at_the_aliases_and_named_on_the_test_page(
    client, member_user, brand_set, monkeypatch
):
    monkeypatch.setattr("tasks.visibility.extraction.PATTERN_TIMEOUT", 0.001)
    client.force_login(member_user)
    aliases = "Newco Parks\nre:(a|aa)+b"

    response = client.post(
        reverse("visibility:brand_create", args=[brand_set.pk]), {"name": "Newco", "aliases": aliases}
    )

    assert response.status_code == 200
    assert "can take far too long on some answers" in " ".join(response.context["form"].errors["aliases"])
    assert f">\n{aliases}</textarea>" in response.content.decode()
    assert brand_set.brands.count() == 4
    # One stored before the check: the test page names it and still finds the others.
    brand_set.brands.filter(name="Initech").update(aliases="re:(a|aa)+b")
    tested = client.post(reverse("visibility:set_test", args=[brand_set.pk]), {"text": "a" * 36 + "! Globex"})
    html = tested.content.decode()
    assert "The alias <code>re:(a|aa)+b</code> ran out of time on this text and was left out" in html
    assert '<mark class="mention mention-other">Globex</mark>' in html


@pytest.mark.parametrize("domains", ["[]", "http://[::1", "acme.com, []"])
def test_a_domain_urlsplit_cannot_read_is_a_field_error_with_the_input_kept(
    client, member_user, brand_set, domains
):
    client.force_login(member_user)
    globex = brand_set.brands.get(name="Globex")
    for url in (
        reverse("visibility:brand_create", args=[brand_set.pk]),
        reverse("visibility:brand_edit", args=[brand_set.pk, globex.pk]),
    ):
        name = "Newco" if "new" in url else "Globex"
        response = client.post(url, {"name": name, "aliases": "Newco Parks", "domains": domains})

        assert response.status_code == 200, url
        html = response.content.decode()
        bad = "[]" if "[]" in domains else "http://[::1"
        assert f"Not a domain: {bad}." in html
        assert (
            f'value="{name}"' in html
            and "Newco Parks</textarea>" in html
            and f">\n{domains}</textarea>" in html
        )
    assert brand_set.brands.count() == 4
    assert brand_set.brands.get(pk=globex.pk).domains == "globex.com"


HUGE = "99999999999999999999"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_set_or_brand_id_that_cannot_exist_is_a_404(client, team_admin, brand_set, method):
    client.force_login(team_admin)
    brand = brand_set.brands.first()
    urls = [f"/visibility/sets/{HUGE}/{tail}" for tail in ("", "export.csv", "edit/", "delete/", "test/")]
    urls += [f"/visibility/sets/{HUGE}/{tail}" for tail in ("answers/", "brands/new/", f"brands/{brand.pk}/")]
    urls += [
        f"/visibility/sets/{HUGE}/brands/{brand.pk}/delete/",
        f"/visibility/sets/{HUGE}/brands/1/delete/",
    ]
    urls += [
        f"/visibility/sets/{brand_set.pk}/brands/{HUGE}/",
        f"/visibility/sets/{brand_set.pk}/brands/{HUGE}/delete/",
    ]
    for url in urls:
        if method == "post" and url.endswith(("export.csv", "answers/", f"/visibility/sets/{HUGE}/")):
            continue  # GET only
        assert getattr(client, method)(url).status_code == 404, url
    assert brand_set.brands.count() == 4


@pytest.mark.parametrize(
    "query",
    [
        {"period": "nope", "by": "year"},
        {"date_from": "2026-99-99", "date_to": "x"},
        {"date_from": "1900-01-01", "date_to": "9999-12-31"},
        {"set": "abc"},
        {"set": "99999999999999999999"},
    ],
)
def test_odd_page_input_never_gives_a_500(client, member_user, brand_set, answers, query):
    client.force_login(member_user)
    for url in (
        reverse("visibility:set_page", args=[brand_set.pk]),
        reverse("visibility:tag_page", kwargs={"tag": "parks"}),
        reverse("visibility:set_export", args=[brand_set.pk]),
        reverse("visibility:answers", args=[brand_set.pk]),
    ):
        assert client.get(url, query).status_code == 200, url
    odd = {
        "figure": "x",
        "brand": "-1",
        "position": "zz",
        "page": "99999",
        "tag": "t" * 300,
        "model": "m" * 500,
    }
    assert client.get(reverse("visibility:answers", args=[brand_set.pk]), odd).status_code == 200


def test_the_answers_page_lists_the_filters_it_ignored_and_applies_the_others(
    client, member_user, brand_set, four
):
    client.force_login(member_user)
    acme = brand_set.brands.get(name="Acme")
    url = reverse("visibility:answers", args=[brand_set.pk])

    response = client.get(
        url, {"brand": acme.pk, "provider": "claude", "figure": "nope", "date_from": "2026-99-99"}
    )
    unknown = client.get(url, {"brand": "999999"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html and "Some filters were ignored:" in html
    assert "Figure “nope”: Select a valid choice. nope is not one of the available choices." in html
    assert "From “2026-99-99”: Enter a valid date." in html
    assert "<h1>2 answers mentioning Acme</h1>" in html  # the valid brand and provider still apply
    assert unknown.status_code == 200
    assert (
        "Brand “999999”: No brand of this set has this id (it may have been deleted)."
        in unknown.content.decode()
    )
    assert "Some filters were ignored:" not in client.get(url, {"brand": acme.pk}).content.decode()


@pytest.mark.parametrize(
    ("dates", "shown"),
    [
        ({"date_from": "2026-99-99"}, "this month"),
        ({"date_from": "nope", "date_to": "2026-02-30"}, "this month"),
        ({"date_from": "2026-99-99", "date_to": "2026-03-05"}, "5 Mar 2026"),
    ],
    ids=["one bad date", "two bad dates", "a bad date beside a good one"],
)
def test_a_bad_date_on_the_answers_page_says_which_period_is_shown_instead(
    client, member_user, brand_set, dates, shown
):
    client.force_login(member_user)
    url = reverse("visibility:answers", args=[brand_set.pk])

    html = client.get(url, dates).content.decode()

    alert = re.search(r'<div class="form-errors" role="alert">.*?</div>', html, re.S).group(0)
    for typed in dates.values():
        assert f"“{typed}”" in alert or typed == "2026-03-05"  # the bad input, as typed
    if shown == "this month":
        period = periods.period_preset("this_month")
        assert f"Showing this month ({period.label}) instead." in alert
    else:
        assert f"Showing {shown} instead." in alert
    assert f"{brand_set.name} · {shown if shown != 'this month' else period.label}" in html


def test_a_good_period_on_the_answers_page_is_not_said_to_be_a_fallback(client, member_user, brand_set):
    client.force_login(member_user)
    url = reverse("visibility:answers", args=[brand_set.pk])

    html = client.get(url, {"date_from": "2026-03-01", "figure": "nope"}).content.decode()

    assert "Some filters were ignored:" in html and "instead." not in html


def test_an_unknown_provider_is_listed_as_ignored_and_the_other_filters_still_apply(
    client, member_user, brand_set, four
):
    client.force_login(member_user)
    acme = brand_set.brands.get(name="Acme")
    url = reverse("visibility:answers", args=[brand_set.pk])

    response = client.get(url, {"brand": acme.pk, "provider": "chatgpt"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Some filters were ignored:" in html
    assert "Provider “chatgpt”: Not a provider: give chat_gpt, claude, gemini or perplexity." in html
    assert "<h1>3 answers mentioning Acme</h1>" in html  # every provider's, not none
    assert 'value="chatgpt"' not in html and " · chatgpt" not in html


def test_the_answers_page_names_the_provider_it_shows_as_the_product_does(
    client, member_user, brand_set, four
):
    client.force_login(member_user)
    url = reverse("visibility:answers", args=[brand_set.pk])

    html = client.get(url, {"provider": "chat_gpt"}).content.decode()

    subtitle = html.split('<p class="muted small">')[1].split("</p>")[0]
    assert " · ChatGPT" in subtitle and "chat_gpt" not in subtitle


def test_a_brands_figure_without_a_brand_is_listed_as_ignored_and_every_answer_shown(
    client, member_user, brand_set, four
):
    client.force_login(member_user)
    url = reverse("visibility:answers", args=[brand_set.pk])
    every = client.get(url).content.decode()

    html = client.get(url, {"figure": "cited"}).content.decode()

    assert "Some filters were ignored:" in html
    assert "Figure “cited”: Give a brand for this figure; showing every answer." in html
    heading = re.search(r"<h1>.*?</h1>", html).group(0)
    assert heading == re.search(r"<h1>.*?</h1>", every).group(0)


@pytest.mark.parametrize(
    ("figure", "heading", "shown"),
    [
        ("answers", "<h1>4 answers</h1>", "every answer"),
        ("ours", "<h1>3 answers mentioning our brands</h1>", "the answers mentioning our brands"),
    ],
)
def test_a_brand_beside_a_figure_of_all_brands_is_listed_as_ignored_not_put_in_the_heading(
    client, member_user, brand_set, four, figure, heading, shown
):
    """The heading said “4 answers mentioning Globex” over every answer, Globex's or not."""
    client.force_login(member_user)
    globex = brand_set.brands.get(name="Globex")
    url = reverse("visibility:answers", args=[brand_set.pk])

    html = client.get(url, {"figure": figure, "brand": globex.pk}).content.decode()

    assert re.search(r"<h1>.*?</h1>", html).group(0) == heading
    assert "Some filters were ignored:" in html
    assert f"Brand “{globex.pk}”: This figure is not about one brand; showing {shown}." in html
    assert len(re.findall(r'<article class="card answer"', html)) == int(re.search(r"<h1>(\d+)", heading)[1])


def test_a_bad_position_is_listed_as_ignored_and_not_filtered_on(client, member_user, brand_set, four):
    client.force_login(member_user)
    acme = brand_set.brands.get(name="Acme")
    url = reverse("visibility:answers", args=[brand_set.pk])

    bad = client.get(url, {"brand": acme.pk, "figure": "position", "position": "zz"}).content.decode()
    missing = client.get(url, {"brand": acme.pk, "figure": "position"}).content.decode()
    good = client.get(url, {"brand": acme.pk, "figure": "position", "position": "2"}).content.decode()

    assert "Position “zz”: Enter a whole number." in bad
    assert "<h1>3 answers mentioning Acme</h1>" in bad  # not the answer where Acme has no position
    assert "Position: Give the position to show the answers at." in missing
    assert "<h1>3 answers mentioning Acme</h1>" in missing
    assert "<h1>2 answers with Acme at position 2</h1>" in good
    assert "Some filters were ignored:" not in good


@pytest.mark.parametrize("text", ["Acme " * 20_001, "   "], ids=["too long", "blank"])
def test_a_text_the_test_page_refuses_is_said_so_in_the_part_htmx_redraws(
    client, member_user, brand_set, text
):
    """With htmx only the result below the form is redrawn: the form's error must be there too, or
    "Find brands" seems to do nothing."""
    client.force_login(member_user)
    url = reverse("visibility:set_test", args=[brand_set.pk])
    text = "Acme " * 20_001  # over 100,000 characters

    fragment = client.post(url, {"text": text}, headers={"HX-Request": "true"}).content.decode()
    page = client.post(url, {"text": text}).content.decode()

    error = "at most 100000 characters"
    result = re.search(r'<section class="card" id="match-result".*?</section>', fragment, re.S).group(0)
    assert error in result and 'role="alert"' in result
    assert page.count(error) == 1  # without htmx, at the field only


def test_the_test_page_shows_matches_without_saving(client, member_user, brand_set):
    client.force_login(member_user)

    response = client.post(
        reverse("visibility:set_test", args=[brand_set.pk]), {"text": "Acme Parks & <b>Globex</b>"}
    )

    html = response.content.decode()
    assert (
        '<mark class="mention mention-ours">Acme Parks</mark> &amp; '
        '&lt;b&gt;<mark class="mention mention-other">Globex</mark>&lt;/b&gt;'
    ) in html
    assert not BrandMention.objects.exists()


@pytest.mark.parametrize("url", ["set", "tag"])
def test_after_show_the_period_shown_is_the_one_marked_current(client, member_user, brand_set, answers, url):
    client.force_login(member_user)
    page = (
        reverse("visibility:set_page", args=[brand_set.pk])
        if url == "set"
        else reverse("visibility:tag_page", kwargs={"tag": "parks"})
    )

    # "Show" in the Custom period panel: htmx swaps the report in
    response = client.get(page, {"period": "last_30", "by": "day"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert periods.period_preset("last_30").label in html
    current = re.findall(r'<a href="[^"]*" class="active" aria-current="page">([^<]*)</a>', html)
    assert "Last 30 days" in current and "This month" not in current


@pytest.mark.parametrize("url", ["set", "tag"])
def test_after_show_the_export_and_the_brand_set_tabs_follow_the_period(
    client, member_user, brand_set, answers, url
):
    """They sit above the report htmx redraws: they come along out of band, or "Export CSV" would export
    the period shown before."""
    client.force_login(member_user)
    BrandSetTag.objects.create(brand_set=BrandSet.objects.create(name="Rivals"), tag="parks")
    page = (
        reverse("visibility:set_page", args=[brand_set.pk])
        if url == "set"
        else reverse("visibility:tag_page", kwargs={"tag": "parks"})
    )
    custom = {"set": brand_set.pk, "period": "custom", "date_from": "2026-01-05", "date_to": "2026-01-20"}

    html = client.get(page, custom, headers={"HX-Request": "true"}).content.decode()

    export = re.search(r'<div class="actions" id="visibility-export" hx-swap-oob="true"><a [^>]*>', html)
    assert "date_from=2026-01-05&amp;date_to=2026-01-20" in export.group(0)
    if url == "tag":
        tabs = re.search(r'<nav [^>]*id="visibility-sets" hx-swap-oob="true">.*?</nav>', html, re.S)
        assert "date_from=2026-01-05&amp;date_to=2026-01-20" in tabs.group(0)


def test_switching_brand_set_on_a_tag_page_keeps_the_period_shown(client, member_user, brand_set, answers):
    client.force_login(member_user)
    rivals = BrandSet.objects.create(name="Rivals")
    BrandSetTag.objects.create(brand_set=rivals, tag="parks")
    url = reverse("visibility:tag_page", kwargs={"tag": "parks"})
    last_month = periods.period_preset("last_month")

    html = client.get(url, {"set": brand_set.pk, "period": "last_month", "by": "week"}).content.decode()

    link = re.search(
        r'<nav class="segmented" aria-label="Brand set"[^>]*>.*?<a href="([^"]*)">Rivals</a>', html, re.S
    )
    other = client.get(url + link.group(1).replace("&amp;", "&")).content.decode()
    assert f"{last_month.label} <span" in other
    assert re.search(r'class="active" aria-current="page">Rivals<', other)
    assert re.search(r'href="[^"]*by=week[^"]*" class="active" aria-current="page">Week<', other)


def test_a_preset_chosen_on_a_tag_pages_custom_period_shows_that_preset(
    client, member_user, brand_set, answers
):
    """As on the spend page: the select changed to a preset wins over the dates still in the inputs."""
    client.force_login(member_user)
    url = reverse("visibility:tag_page", kwargs={"tag": "parks"})
    custom = {"set": brand_set.pk, "period": "custom", "date_from": "2026-01-05", "date_to": "2026-01-20"}
    html = client.get(url, custom).content.decode()
    form = re.search(r'<form method="get" class="filters".*?</form>', html, re.S).group(0)
    sent = dict(re.findall(r'<input type="(?:hidden|date)" name="(\w+)" value="([^"]*)"', form))
    assert (sent["date_from"], sent["date_to"]) == ("2026-01-05", "2026-01-20")

    response = client.get(url, {**sent, "period": "last_month"})

    assert response.context["period"] == periods.period_preset("last_month")


def test_the_tag_page_serves_a_monitor_with_its_title_and_back_link(client, member_user, brand_set, answers):
    client.force_login(member_user)

    url = visibility_url_for_tag("parks", title="Parks monitor", back="/monitors/3/")
    html = client.get(url).content.decode()
    evil = client.get(visibility_url_for_tag("parks", back="https://evil.example/")).content.decode()

    assert "Visibility · Parks monitor" in html and 'href="/monitors/3/" data-back' in html
    assert "evil.example" not in evil


def test_the_tag_page_marks_runs_whose_brands_changed(client, member_user, brand_set):
    today = timezone.localdate()
    for hour, text in (
        (1, "Acme then Globex."),
        (2, "Acme then Globex, again."),
        (3, "Globex then Acme."),
        (4, "Only Globex."),
    ):
        make_task(
            tag="parks",
            user_prompt="Best parks?",
            answer_text=text,
            created_at=at(today - timedelta(days=1), hour),
        )
    mentions_recompute(brand_set_id=brand_set.pk)
    client.force_login(member_user)

    html = client.get(reverse("visibility:tag_page", kwargs={"tag": "parks"})).content.decode()

    assert "Acme moved #1 → #2" in html and "Globex moved #2 → #1" in html
    assert "Acme disappeared (was #2)" in html
    assert html.count("<li><a href=") == 2  # the unchanged second run is not marked


def test_a_tag_without_changes_says_so_in_the_same_words_on_its_visibility_and_tag_pages(
    client, member_user, brand_set
):
    """The monitor and tag pages show the changes with the same partial; the visibility page has its own."""
    make_task(tag="parks", user_prompt="Best parks?", answer_text="Acme then Globex.")
    mentions_recompute(brand_set_id=brand_set.pk)
    client.force_login(member_user)

    visibility = client.get(reverse("visibility:tag_page", kwargs={"tag": "parks"})).content.decode()
    tag_page = client.get(reverse("history:tag_detail", kwargs={"tag": "parks"})).content.decode()

    for html in (visibility, tag_page):
        assert "No change that matters between runs yet." in html
    assert "No change between runs yet." not in visibility


def test_the_newest_changes_shown_are_those_of_comparing_every_run(brand_set, answers):
    # Every run compared with the run before it of the same prompt and model, oldest first, by hand.
    names = dict(brand_set.brands.values_list("pk", "name"))
    rows = BrandMention.objects.filter(brand_set=brand_set, tag="parks")
    found = {}
    for row in rows.filter(brand__isnull=False):
        found.setdefault(row.task_id, {})[row.brand_id] = (row.position, row.citation_count > 0)
    expected, last = [], {}
    for answer in rows.filter(brand__isnull=True).select_related("task").order_by("created_at"):
        key = (answer.task.user_prompt, answer.model_name)
        if key in last:
            notes = _notes(found.get(last[key], {}), found.get(answer.task_id, {}), names)
            if notes:
                expected.append((answer.task_id, notes))
        last[key] = answer.task_id
    expected.reverse()

    every = answer_changes(brand_set=brand_set, tag="parks")

    assert len(expected) > 5
    assert [(change.task_id, change.notes) for change in every] == expected
    for shown in (1, 5, len(expected), len(expected) + 1):
        newest = answer_changes(brand_set=brand_set, tag="parks", shown=shown)
        assert [(change.task_id, change.notes) for change in newest] == expected[:shown]


def test_our_visibility_says_so_when_a_period_has_no_answers_to_compare(client, member_user, brand_set):
    client.force_login(member_user)
    today = timezone.localdate()
    make_task(tag="parks", answer_text="Acme first.", created_at=at(today))
    make_task(tag="parks", answer_text="Globex first.", created_at=at(today - timedelta(days=20)))
    mentions_recompute(brand_set_id=brand_set.pk)
    url = reverse("visibility:set_page", args=[brand_set.pk])

    def our_kpi(days_ago: int) -> str:
        day = (today - timedelta(days=days_ago)).isoformat()
        html = client.get(url, {"period": "custom", "date_from": day, "date_to": day}).content.decode()
        kpi = re.search(r'data-figure="ours-visibility">([^<]*)</a></span><span class="[^"]*">([^<]*)<', html)
        return f"{kpi.group(1)} · {kpi.group(2)}"

    assert our_kpi(0) == "100.0% · no answers the period before"
    assert our_kpi(19) == "– · 0.0% the period before"  # none that day, one the day before
    assert our_kpi(20) == "0.0% · no answers the period before"


def test_cost_figures_are_for_those_who_see_spend(client, member_user, team_admin, brand_set, four):
    url = reverse("visibility:set_page", args=[brand_set.pk])
    client.force_login(member_user)
    assert "Cost of these answers" not in client.get(url).content.decode()
    client.force_login(team_admin)
    assert "Cost of these answers" in client.get(url).content.decode()


def test_someone_without_a_role_cannot_see_or_change_brand_sets(client, django_user_model, brand_set):
    client.force_login(django_user_model.objects.create_user(username="nobody"))
    assert client.get(reverse("visibility:set_page", args=[brand_set.pk])).status_code == 403
    assert client.post(reverse("visibility:set_delete", args=[brand_set.pk])).status_code == 403
    assert BrandSet.objects.filter(pk=brand_set.pk).exists()
    assert Brand.objects.count() == 4 and BrandSetTag.objects.count() == 1


def test_answers_behind_counts_match_the_report_for_a_tag_scope(brand_set, answers):
    scope = AnswerScope(tags=("parks",))
    period = periods.period_preset("last_30")
    report = visibility_report(brand_set=brand_set, scope=scope, period=period)
    for line in report.lines:
        assert (
            answers_behind(
                brand_set=brand_set, scope=scope, period=period, brand_id=line.brand.pk, figure="mentioned"
            ).count()
            == line.mentioned
        )


@pytest.mark.parametrize("dates", [{"date_from": "9999-12-31"}, {"date_to": "0001-01-01"}])
def test_dates_at_the_calendars_ends_give_a_page_not_a_server_error(client, member_user, brand_set, dates):
    client.force_login(member_user)

    answers = client.get(reverse("visibility:answers", args=[brand_set.pk]), dates)
    page = client.get(reverse("visibility:set_page", args=[brand_set.pk]), {"period": "custom", **dates})

    assert answers.status_code == 200
    assert page.status_code == 200
    assert "Give a date between 2000 and 2999." in page.content.decode()


@pytest.mark.parametrize("asked", ["5", "999", "100000"])
def test_an_answers_page_past_the_last_says_it_shows_the_last(client, member_user, brand_set, four, asked):
    from tasks.visibility import views

    client.force_login(member_user)
    url = reverse("visibility:answers", args=[brand_set.pk])
    with mock.patch.object(views, "ANSWERS_PER_PAGE", 1):
        count = client.get(url).context["page"].paginator.count
        response = client.get(url, {"brand": "", "page": asked})  # the other filters stay in the link

    html = response.content.decode()
    assert response.status_code == 200 and count >= 2
    notice = re.search(r'<p class="notice" role="status">(.*?)</p>', html, re.S).group(1)
    assert notice == (
        f"There is no page {asked}: the answers end on page {count}, shown here. "
        '<a href="?brand=&amp;page=1">First page</a>'
    )
    assert f"Page {count} of {count}" in html


def test_an_answers_page_that_exists_says_nothing_of_it(client, member_user, brand_set, four):
    from tasks.visibility import views

    client.force_login(member_user)
    with mock.patch.object(views, "ANSWERS_PER_PAGE", 1):
        html = client.get(reverse("visibility:answers", args=[brand_set.pk]), {"page": "2"}).content.decode()
    assert "There is no page" not in html and "Page 2 of" in html


def test_a_page_asked_of_no_answers_does_not_say_the_answers_end_on_page_1(client, member_user, brand_set):
    """It said “There is no page 5: the answers end on page 1, shown here.” over no answer at all."""
    client.force_login(member_user)

    html = client.get(reverse("visibility:answers", args=[brand_set.pk]), {"page": "5"}).content.decode()

    notice = re.search(r'<p class="notice" role="status">(.*?)</p>', html, re.S)[1]
    assert notice == "There is no page 5: no answer is behind this figure."
    assert "<h1>0 answers</h1>" in html


@pytest.mark.parametrize("page", ["visibility:set_page", "visibility:answers"])
def test_a_period_over_three_years_says_where_it_was_cut_as_the_spend_page_does(
    client, member_user, brand_set, page
):
    client.force_login(member_user)
    query = {"period": "custom", "date_from": "2020-01-01", "date_to": "2026-12-31"}

    html = client.get(reverse(page, args=[brand_set.pk]), query).content.decode()

    start = periods.period_custom(
        start=timezone.datetime(2020, 1, 1).date(), end=timezone.datetime(2026, 12, 31).date()
    ).start
    assert f"A period is at most three years: this one starts on {start:%-d %b %Y}." in html
    assert "at most three years" not in client.get(reverse(page, args=[brand_set.pk])).content.decode()


def test_a_link_to_a_deleted_brands_answers_says_the_brand_may_have_been_deleted(
    client, member_user, brand_set, four
):
    client.force_login(member_user)
    globex = brand_set.brands.get(name="Globex")
    link = _report(brand_set).lines[1].url  # the report was open when Globex was deleted
    client.post(reverse("visibility:brand_delete", args=[brand_set.pk, globex.pk]))

    html = client.get(link).content.decode()

    assert f"Brand “{globex.pk}”: No brand of this set has this id (it may have been deleted)." in html
    assert "<h1>4 answers</h1>" in html
