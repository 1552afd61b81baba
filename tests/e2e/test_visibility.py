"""A new user sets up a brand set in the browser, tests its matching, reads the visibility of a tag per
model and opens the answers behind a figure with the mentions highlighted."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tasks.models import Brand, BrandSet, BrandSetTag
from tasks.visibility.mentions import mentions_recompute
from tests.e2e.browsing import log_in
from tests.factories import make_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BRANDS = [
    ("Acme", True, "acme.com"),
    ("Globex", False, "globex.com"),
    ("Initech", False, ""),
    ("Umbrella", False, ""),
]


def test_a_brand_set_from_setup_to_the_answers_behind_a_figure(logged_in_page):
    page = logged_in_page
    now = timezone.now()
    for i, (text, model) in enumerate(
        [
            ("Acme is the favourite; Globex follows.", "gpt-4.1-mini"),
            ("Globex first, then Initech. <b>not bold</b>", "gpt-4.1-mini"),
            ("Umbrella and ACMÉ are both fine.", "claude-sonnet-4-0"),
        ]
    ):
        provider = "claude" if model.startswith("claude") else "chat_gpt"
        make_task(
            tag="parks-monitor",
            provider=provider,
            model_name=model,
            answer_text=text,
            created_at=now - timedelta(hours=i + 1),
        )

    page.goto("/visibility/")
    page.get_by_role("link", name="New brand set").click()
    page.get_by_label("Name").fill("Parks")
    page.get_by_label("Tags").fill("parks-monitor")
    page.get_by_role("button", name="Save").click()
    for name, ours, domain in BRANDS:
        page.get_by_role("link", name="Add a brand").click()
        page.get_by_label("Name").fill(name)
        if ours:
            page.get_by_label("Ours (not a competitor)").check()
        page.get_by_label("Domains").fill(domain)
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#brands")).to_contain_text(name)

    page.get_by_role("link", name="Test matching").click()
    page.get_by_label("An answer").fill("We like acme and <i>Globex</i>.")
    page.get_by_role("button", name="Find brands").click()
    expect(page.locator("#match-result mark.mention-ours")).to_have_text("acme")
    expect(page.locator("#match-result .answer-text")).to_contain_text("<i>")

    mentions_recompute(brand_set_id=BrandSet.objects.get(name="Parks").pk)  # what the worker does

    page.goto("/visibility/tags/parks-monitor/?title=Parks+monitor&back=/tags/")
    expect(page.locator("h1")).to_have_text("Visibility · Parks monitor")
    acme = page.locator('tr[data-brand="Acme"]')
    expect(acme.locator('[data-figure="visibility"]')).to_have_text("66.7%")
    by_model = page.locator('table[data-table="by-model"]')
    expect(by_model).to_contain_text("gpt-4.1-mini")
    expect(by_model).to_contain_text("claude-sonnet-4-0")

    acme.locator('[data-figure="mentioned"]').click()
    expect(page.locator("h1")).to_contain_text("2 answers mentioning Acme")
    expect(page.locator("mark.mention-ours")).to_have_text(["Acme", "ACMÉ"])
    expect(page.locator("article.answer")).to_have_count(2)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_brand_sets_page_fits_a_phone_with_a_set_reading_many_tags(open_page, user, scheme):
    brand_set = BrandSet.objects.create(name="Demo brands")
    for name in ["Acme", "Cyberdyne", "Globex", "Hooli", "Initech", "Stark", "Tyrell", "Umbrella"]:
        Brand.objects.create(brand_set=brand_set, name=name, is_ours=name == "Acme")
    for index in range(30):
        BrandSetTag.objects.create(brand_set=brand_set, tag=f"research:noise-cancelling-headphones/{index}")
    page = open_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
    log_in(page, user.get_username())

    page.goto("/visibility/")

    expect(page.get_by_role("link", name="Demo brands")).to_be_visible()
    width, scroll_width = page.evaluate("[innerWidth, document.documentElement.scrollWidth]")
    assert scroll_width <= width, f"the page scrolls sideways: {scroll_width}px wide in a {width}px window"
    # The set's Edit and Test links stay on one line beside each other.
    edit, test = page.get_by_role("link", name="Edit"), page.get_by_role("link", name="Test")
    assert abs(edit.bounding_box()["y"] - test.bounding_box()["y"]) < 2


# The colour a CSS variable of app.css computes to, as an element's `color` reads it.
COLOUR_OF = """name => {
  const probe = document.createElement("span");
  probe.style.color = `var(${name})`;
  document.body.append(probe);
  const colour = getComputedStyle(probe).color;
  probe.remove();
  return colour;
}"""


@pytest.mark.parametrize(
    ("before", "now", "delta", "colour"),
    [
        ("Acme is the favourite.", "Globex is the favourite.", "-100.0 pts vs 100.0%", "--red"),
        ("Globex is the favourite.", "Acme is the favourite.", "+100.0 pts vs 0.0%", "--green"),
    ],
)
def test_our_visibility_falling_reads_red_and_rising_green(logged_in_page, before, now, delta, colour):
    page = logged_in_page
    brand_set = BrandSet.objects.create(name="Parks")
    Brand.objects.create(brand_set=brand_set, name="Acme", is_ours=True)
    Brand.objects.create(brand_set=brand_set, name="Globex")
    BrandSetTag.objects.create(brand_set=brand_set, tag="parks")
    make_task(tag="parks", answer_text=before, created_at=timezone.now() - timedelta(days=10))
    make_task(tag="parks", answer_text=now, created_at=timezone.now() - timedelta(hours=1))
    mentions_recompute(brand_set_id=brand_set.pk)

    page.goto(f"/visibility/sets/{brand_set.pk}/?period=last_7")

    change = page.locator(".kpi", has_text="Acme visibility").locator(".delta")
    expect(change).to_have_text(delta)
    expect(change).to_have_css("color", page.evaluate(f"({COLOUR_OF})('{colour}')"))


MARKDOWN_ANSWER = (
    "## The best parks\n\n**Acme** leads, then [Globex](https://globex.com/parks).\n\n"
    "| Park | Visitors per year in the whole region |\n|---|---|\n"
    "| Acme Parks | 15,000,000 |\n| Globex | 9,500,000 |\n\n"
    "```\nacme --list-parks --region=île-de-france --sort=visitors --limit=100\n```"
)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_an_answer_reads_as_formatted_text_on_a_phone(open_page, user, scheme):
    brand_set = BrandSet.objects.create(name="Parks")
    Brand.objects.create(brand_set=brand_set, name="Acme", is_ours=True)
    Brand.objects.create(brand_set=brand_set, name="Globex")
    BrandSetTag.objects.create(brand_set=brand_set, tag="parks")
    make_task(tag="parks", answer_text=MARKDOWN_ANSWER, created_at=timezone.now() - timedelta(hours=1))
    mentions_recompute(brand_set_id=brand_set.pk)
    page = open_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
    log_in(page, user.get_username())

    page.goto(f"/visibility/sets/{brand_set.pk}/answers/")

    answer = page.locator("article.answer .answer-body")
    expect(answer.get_by_role("heading", name="The best parks")).to_be_visible()
    expect(answer.locator("strong mark.mention-ours")).to_have_text("Acme")
    expect(answer.get_by_role("link", name="Globex")).to_have_attribute("href", "https://globex.com/parks")
    expect(answer.locator("table mark.mention-ours")).to_have_text("Acme")
    expect(answer).not_to_contain_text("**")
    width, scroll_width = page.evaluate("[innerWidth, document.documentElement.scrollWidth]")
    assert scroll_width <= width, f"the page scrolls sideways: {scroll_width}px wide in a {width}px window"
    # The mark keeps the text's own colour, readable on its background in both schemes.
    expect(answer.locator("td mark.mention-other")).to_have_css(
        "color", page.evaluate(f"({COLOUR_OF})('--text')")
    )


LONG_TAG = "research:noise-cancelling-headphones/over-ear-models-" + "x" * 150


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_long_tags_names_and_aliases_fit_a_phone(open_page, user, scheme):
    brand_set = BrandSet.objects.create(name="Headphones-" + "y" * 100)
    Brand.objects.create(
        brand_set=brand_set, name="Sennheiser", is_ours=True, aliases="re:sennheiser[-_ ]?(hd|momentum)" * 6
    )
    BrandSetTag.objects.create(brand_set=brand_set, tag=LONG_TAG)
    make_task(tag=LONG_TAG, answer_text="Sennheiser leads.", created_at=timezone.now() - timedelta(hours=1))
    mentions_recompute(brand_set_id=brand_set.pk)
    page = open_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
    log_in(page, user.get_username())

    for path in [
        f"/visibility/tags/{LONG_TAG}/",
        f"/visibility/sets/{brand_set.pk}/",
        f"/visibility/sets/{brand_set.pk}/answers/?tag={LONG_TAG}",
        f"/visibility/sets/{brand_set.pk}/edit/",
    ]:
        page.goto(path)
        width, scroll_width = page.evaluate("[innerWidth, document.documentElement.scrollWidth]")
        assert scroll_width <= width, f"{path} scrolls sideways: {scroll_width}px wide in a {width}px window"
