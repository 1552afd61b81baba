"""What a person sees on every main page, at a laptop's and a phone's size, with the OS in light and in dark
mode: the page never scrolls sideways, its text is readable against the colour actually behind it, and the
builder's submit button (with its charge and its reasons) stays on screen from the top of the page to the
bottom. Pressing Enter in a one-line builder field submits the task, with and without JavaScript, and never
adds an empty earlier turn.

One browser context per window size, its page reused for every URL and each page looked at in both colour
schemes, so the whole walk stays well under a minute.
"""

import re
from decimal import Decimal

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from tasks.models import (
    Batch,
    Brand,
    BrandSet,
    BrandSetTag,
    Budget,
    MonitorRun,
    PromptTemplate,
    PromptTemplateVersion,
    Task,
)
from tasks.team.audit import audit_record
from tasks.visibility.mentions import mentions_recompute
from tests.conftest import PASSWORD
from tests.e2e.browsing import log_in, settle
from tests.factories import make_catalog, make_task
from tests.monitors.factories import make_monitor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {
    "1440x900": {"width": 1440, "height": 900},
    "1366x768": {"width": 1366, "height": 768},
    "390x844": {"width": 390, "height": 844},
}
SCHEMES = ["light", "dark"]
TASK_URL = re.compile(r"/tasks/[0-9a-f-]{36}/$")

ANSWER = """Recent coverage puts **Parc Astérix** and **Disneyland Paris** ahead, with regional parks growing.

- Disneyland Paris: about 15 million visits a year, the most visited park in Europe.
- Parc Astérix: a record season, with a new hotel on site.
- Puy du Fou: shows rather than rides; rated highly by families.

Sources disagree on the smaller parks; see [the industry report](https://example.com/report) for details."""

# Every text-bearing element with its own text: the WCAG contrast of its colour against the colour actually
# painted behind it (its own and its ancestors' backgrounds, composited), and its opacity. 4.5:1 for normal
# text, 3:1 for large text (24px, or 18.66px bold). Disabled controls are exempt, as in WCAG.
CONTRAST_PROBLEMS = """
() => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const cache = new Map();
  function rgba(color) {
    if (!cache.has(color)) {
      ctx.clearRect(0, 0, 1, 1);
      ctx.fillStyle = "rgba(0, 0, 0, 0)";
      ctx.fillStyle = color;
      ctx.fillRect(0, 0, 1, 1);
      const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
      cache.set(color, [r, g, b, a / 255]);
    }
    return cache.get(color);
  }
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const probe = document.createElement("div");
  probe.style.setProperty("background-color", "Canvas");
  document.documentElement.append(probe);
  const canvasColor = rgba(getComputedStyle(probe).backgroundColor);
  probe.remove();
  function background(element) {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] >= 1) break;
    }
    const opaque = layers.length && layers[layers.length - 1][3] >= 1;
    let base = opaque ? layers.pop() : [...canvasColor.slice(0, 3), 1];
    for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base);
    return base;
  }
  function luminance([r, g, b]) {
    const [R, G, B] = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  }
  function ratio(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }
  const problems = [];
  let checked = 0;
  for (const element of document.body.querySelectorAll("*")) {
    if (["SCRIPT", "STYLE", "OPTION", "OPTGROUP", "TITLE", "NOSCRIPT"].includes(element.tagName)) continue;
    const text = [...element.childNodes]
      .filter((node) => node.nodeType === Node.TEXT_NODE)
      .map((node) => node.textContent)
      .join("")
      .trim();
    if (!text) continue;
    if (element.closest(":disabled, [aria-disabled='true'], .visually-hidden")) continue;
    if (!element.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const box = element.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;
    const style = getComputedStyle(element);
    const isSvg = element instanceof SVGElement;
    let colour = rgba(isSvg ? style.fill : style.color);
    let opacity = colour[3];
    for (let node = element; node; node = node.parentElement) {
      opacity *= Number(getComputedStyle(node).opacity);
    }
    const back = background(element);
    const fore = over([...colour.slice(0, 3), opacity], back);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const needed = large ? 3 : 4.5;
    const value = ratio(fore, back);
    checked += 1;
    if (value < needed) {
      const tag = `<${element.tagName.toLowerCase()} class="${element.getAttribute("class") || ""}">`;
      const rgb = (colour) => `rgb(${colour.slice(0, 3).map(Math.round)})`;
      problems.push(
        `${value.toFixed(2)} < ${needed} for ${tag} "${text.slice(0, 40)}" (${rgb(fore)} on ${rgb(back)})`
      );
    }
  }
  return {checked, problems};
}
"""

# The submit button fully inside the window, and actually the thing drawn there (not clipped by a panel
# that would need scrolling, not covered by something else).
SUBMIT_IN_VIEW = """
() => {
  const visible = (element) => {
    const box = element.getBoundingClientRect();
    if (!box.width || !box.height) return `has no size`;
    if (box.top < 0 || box.left < 0 || box.bottom > innerHeight || box.right > innerWidth) {
      const [top, bottom] = [box.top, box.bottom].map(Math.round);
      return `is outside the window (top ${top}, bottom ${bottom}, window ${innerHeight})`;
    }
    // A disabled button takes no pointer events, so the point then finds its own card around it.
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    const card = hit && hit.id === "submit-area" && hit.contains(element);
    const own = hit && (hit === element || element.contains(hit) || card);
    if (!own) return `is hidden behind ${hit && hit.outerHTML.slice(0, 80)}`;
    return "";
  };
  const problems = [];
  const button = document.getElementById("submit-button");
  if (!button) return ["no submit button"];
  const problem = visible(button);
  if (problem) problems.push(`the submit button ${problem}`);
  if (!/\\$\\d/.test(button.textContent)) {
    problems.push(`the submit button shows no charge: "${button.textContent}"`);
  }
  const reason = document.getElementById("submit-reason");
  if (reason && !reason.hidden) {
    const reasonProblem = visible(reason);
    if (reasonProblem) problems.push(`the reasons the submit is disabled ${reasonProblem}`);
  }
  return problems;
}
"""


# Tag and label chips and model names are one unbroken line each; cards never have content sticking out;
# and the colours of primary and secondary buttons, collected to be compared across pages.
LAYOUT_PROBLEMS = """
() => {
  const shown = (element) => element.checkVisibility();
  const broken = [...document.querySelectorAll(".tag, a.label, span.label:not(.kpi *), .model")]
    .filter(shown)
    .filter((element) => {
      const style = getComputedStyle(element);
      const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
      return element.getClientRects().length > 1 || element.getBoundingClientRect().height > line * 1.6;
    })
    .map((element) => `"${element.textContent.trim().slice(0, 40)}" breaks across lines`);
  const boxes = ".card, .stat, .kpi, .status-card, .answer, .citations, .run, .filters";
  const spilled = [...document.querySelectorAll(boxes)]
    .filter(shown)
    .filter((element) => element.scrollWidth > element.clientWidth + 1)
    .map((element) => {
      const excess = element.scrollWidth - element.clientWidth;
      return `a .${element.classList[0]} has content ${excess}px wider than itself`;
    });
  const colours = (selector) => [...document.querySelectorAll(selector)]
    .filter((element) => shown(element) && !element.disabled)
    .map((element) => getComputedStyle(element).backgroundColor);
  return {
    problems: [...broken, ...spilled],
    primary: colours("button.primary, .button.primary"),
    secondary: colours("button.secondary, .button.secondary"),
  };
}
"""


@pytest.fixture
def walk(team_admin, live_credential):
    """Realistic data for every main page: tasks in every status (one complete with answer, citations and
    cost), tags, labels, a template with two versions, a batch, budgets, and audit entries."""
    make_catalog()
    tag = "team-a:amusement-parks/france"
    answer = make_task(
        credential=live_credential,
        submitted_by=team_admin,
        user_prompt="Which amusement parks in France are most recommended for families this summer?",
        model_name="gpt-4.1-mini",
        tag=tag,
        labels=["baseline", "q3-review"],
        answer_text=ANSWER,
        money_spent=Decimal("0.010508"),
        web_search_used=True,
        citations=[
            {
                "title": "Disneyland Paris visitor numbers, 2025 season",
                "url": "https://www.leparisien.fr/economie/disneyland-paris-2025",
                "domain": "leparisien.fr",
                "start_index": 0,
                "end_index": 60,
                "text": "",
            },
            {
                "title": "Parc Astérix opens a new hotel",
                "url": "https://www.lefigaro.fr/voyages/parc-asterix-hotel",
                "domain": "lefigaro.fr",
                "start_index": None,
                "end_index": None,
                "text": "A record season, with a new hotel on site.",
            },
        ],
        fan_out_queries=["best amusement parks france families", "parc asterix 2025 season"],
        note="Compare with the July run.",
    )
    for index, status in enumerate(
        ["completed", "completed", "failed", "pending", "unknown", "completed"] * 3
    ):
        make_task(
            credential=live_credential,
            submitted_by=team_admin,
            status=status,
            provider="claude" if index % 3 == 0 else "chat_gpt",
            user_prompt=f"How relevant is the password managers business in Germany now? (run {index})",
            tag="research:password-managers/germany-very-long-tag-name-364" if index % 2 else tag,
            labels=["weekly"] if index % 4 == 0 else [],
            money_spent=Decimal("0.000049") if index == 1 else Decimal("0.0286"),
        )
    template = PromptTemplate.objects.create(
        name="Parks by country", provider="chat_gpt", created_by=team_admin
    )
    fields = {
        "user_prompt": "Which amusement parks in {{country}} are most recommended?",
        "model_name": "gpt-4.1",
    }
    PromptTemplateVersion.objects.create(template=template, number=1, fields=fields, created_by=team_admin)
    version = PromptTemplateVersion.objects.create(
        template=template,
        number=2,
        fields={**fields, "web_search": True},
        note="With web search",
        created_by=team_admin,
    )
    batch = Batch.objects.create(
        name="Parks, five countries", template_version=version, created_by=team_admin, task_count=5,
        estimated_charge=Decimal("0.051"),
    )  # fmt: skip
    for country in ["France", "Germany", "Spain", "Italy", "the United Kingdom"]:
        make_task(
            credential=live_credential,
            submitted_by=team_admin,
            batch=batch,
            template_version=version,
            user_prompt=f"Which amusement parks in {country} are most recommended?",
        )
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("50"), created_by=team_admin)
    Budget.objects.create(
        scope=Budget.Scope.TAG, tag=tag, monthly_limit=Decimal("0.05"), created_by=team_admin
    )
    audit_record(
        actor=team_admin, action="credential.create", obj=live_credential, changes={"name": "Stand-in"}
    )
    audit_record(
        actor=team_admin, action="budget.update", obj=Budget.objects.first(),
        changes={"monthly_limit": {"from": "40.00", "to": "50.00"}},
    )  # fmt: skip
    brand_set = BrandSet.objects.create(name="Amusement parks")
    Brand.objects.create(brand_set=brand_set, name="Parc Astérix", is_ours=True, domains="lefigaro.fr")
    Brand.objects.create(brand_set=brand_set, name="Disneyland Paris", domains="leparisien.fr")
    BrandSetTag.objects.create(brand_set=brand_set, tag=tag)
    mentions_recompute(brand_set_id=brand_set.pk)
    monitor = make_monitor(
        credential=live_credential, owner=team_admin, name="Parks weekly", template_version=version
    )
    # A run with failed tasks, one of them charged before it failed: its Retry line and question.
    run_batch = Batch.objects.create(
        name="Parks weekly, run", template_version=version, created_by=team_admin, task_count=3,
        estimated_charge=Decimal("0.0306"),
    )  # fmt: skip
    for status, charged in [("failed", Decimal("0")), ("failed", Decimal("0.0102")), ("completed", None)]:
        task = make_task(
            credential=live_credential, submitted_by=team_admin, batch=run_batch, template_version=version,
            status=status, user_prompt="Which amusement parks in France are most recommended?",
        )  # fmt: skip
        if charged is not None:
            Task.objects.filter(pk=task.pk).update(charged=charged, spend=charged)
    MonitorRun.objects.create(
        monitor=monitor, slot=timezone.now(), state=MonitorRun.State.DONE, batch=run_batch, task_count=3,
        failed_count=2, completed_count=1,
    )  # fmt: skip
    # An address locked out after failed logins (not the browser's): People's Sign-in locks.
    AccessAttempt.objects.create(
        ip_address="203.0.113.7",
        username="someone",
        user_agent="",
        http_accept="",
        path_info="/accounts/login/",
        get_data="",
        post_data="",
        failures_since_start=settings.AXES_FAILURE_LIMIT,
    )
    return {
        "admin": team_admin,
        "pages": {
            "home": "/",
            "builder (ChatGPT)": "/new/",
            "builder (Claude)": "/new/?provider=claude",
            "task list": "/tasks/",
            "completed task": f"/tasks/{answer.pk}/",
            "tags": "/tags/",
            "tag": None,  # followed from the tags page, whatever the tag URLs look like
            "templates": "/templates/",
            "template": f"/templates/{template.pk}/",
            "batches": "/batches/",
            "batch": f"/batches/{batch.pk}/",
            "spend": "/spend/",
            "spend, a date it cannot read": "/spend/?period=custom&date_from=2026-02-30&date_to=2026-03-02",
            "budgets": "/budgets/",
            "brand set visibility": f"/visibility/sets/{brand_set.pk}/",
            "monitors": "/monitors/",
            "monitor": f"/monitors/{monitor.slug}/",
            "credentials": "/credentials/",
            "people": "/people/",
            "audit": "/audit/",
            "password change": "/accounts/password_change/",
        },
    }


def _look(page, name, buttons=None) -> list[str]:
    """What is wrong with the page as it is drawn now; `buttons` collects the button colours seen."""
    problems = []
    width, scroll_width = page.evaluate("[innerWidth, document.scrollingElement.scrollWidth]")
    if scroll_width > width:
        problems.append(f"{name}: the page scrolls sideways ({scroll_width}px wide in a {width}px window)")
    contrast = page.evaluate(CONTRAST_PROBLEMS)
    if contrast["checked"] < 5:
        problems.append(f"{name}: only {contrast['checked']} text elements found")
    problems += [f"{name}: contrast {problem}" for problem in contrast["problems"][:6]]
    if len(contrast["problems"]) > 6:
        problems.append(f"{name}: …and {len(contrast['problems']) - 6} more low-contrast texts")
    if page.locator(".topbar").count() and not page.locator('link[rel="icon"][href$="favicon.svg"]').count():
        problems.append(f"{name}: no favicon link")
    layout = page.evaluate(LAYOUT_PROBLEMS)
    problems += [f"{name}: {problem}" for problem in layout["problems"][:6]]
    if buttons is not None:
        for kind in ("primary", "secondary"):
            for colour in layout[kind]:
                buttons.setdefault((kind, colour), name)
    return problems


@pytest.mark.parametrize("size", VIEWPORTS)
def test_every_main_page_fits_the_window_reads_well_and_keeps_submit_in_view(open_page, walk, size):
    """Each page is loaded once and looked at in light then in dark mode (the OS setting switched in place,
    as a person switching it sees the page redrawn)."""
    # Reduced motion: no colour transition is caught half-way when the scheme switches.
    page = open_page(viewport=VIEWPORTS[size], reduced_motion="reduce")
    buttons = {scheme: {} for scheme in SCHEMES}

    def look(name):
        found = []
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            found += _look(page, f"{name} ({scheme})", buttons[scheme])
        return found

    page.goto("/accounts/login/")
    problems = look("login")
    log_in(page, walk["admin"].get_username())
    for name, path in walk["pages"].items():
        if path is None:
            path = page.locator("#tag-results a.tag").first.get_attribute("href")
        response = page.goto(path)
        assert response.status == 200, f"{name} ({path}) answered {response.status}"
        settle(page)
        problems += look(name)
        if name.startswith("builder"):
            problems += [f"{name}, top of the page: {p}" for p in page.evaluate(SUBMIT_IN_VIEW)]
            page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
            page.wait_for_timeout(50)
            problems += [f"{name}, bottom of the page: {p}" for p in page.evaluate(SUBMIT_IN_VIEW)]
        if name == "task list" and size == "390x844":
            first_row = page.locator("#task-results tbody tr").first.bounding_box()
            if first_row["y"] > 844:
                problems.append(
                    f"task list: the first row starts at {first_row['y']:.0f}px, below the window"
                )
    for scheme, seen_buttons in buttons.items():
        for kind in ("primary", "secondary"):
            styles = {colour: name for (seen, colour), name in seen_buttons.items() if seen == kind}
            if len(styles) > 1:
                problems.append(f"{kind} buttons come in {len(styles)} colours in {scheme} mode: {styles}")
    assert not problems, f"{len(problems)} problems at {size}:\n" + "\n".join(problems)


# --- The main navigation -----------------------------------------------------------------------------------

# The nav's links a person cannot see: outside the nav's own box (it scrolls sideways without a scrollbar)
# or outside the window.
NAV_LINKS_OUT_OF_SIGHT = """
() => {
  const nav = document.querySelector(".mainnav");
  const box = nav.getBoundingClientRect();
  return [...nav.querySelectorAll("a")]
    .filter((link) => {
      const own = link.getBoundingClientRect();
      return own.left < box.left - 1 || own.right > box.right + 1 || own.right > innerWidth || !own.width;
    })
    .map((link) => link.textContent.trim());
}
"""


@pytest.fixture
def long_named_admin(django_user_model):
    from django.contrib.auth.models import Group

    username = "marie-christine.dupont-longname"
    admin = django_user_model.objects.create_user(username=username, password=PASSWORD)
    admin.groups.add(Group.objects.get(name="Admins"))
    return admin


@pytest.mark.parametrize("width", [1101, 1280, 1366, 1440, 1920])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_an_admins_every_nav_link_is_on_screen_on_a_laptop(open_page, long_named_admin, width, scheme):
    page = open_page(color_scheme=scheme, viewport={"width": width, "height": 768})
    log_in(page, long_named_admin.get_username())
    page.goto("/tasks/")

    expect(page.locator(".navmenu > summary")).to_be_hidden()
    expect(page.locator(".mainnav a")).to_have_count(14)
    assert page.evaluate(NAV_LINKS_OUT_OF_SIGHT) == []
    expect(page.locator(".mainnav").get_by_role("link", name="Alerts")).to_be_visible()
    # Where the links take two lines, the bar is as tall as they are.
    height, content = page.evaluate(
        "[document.querySelector('.topbar').clientHeight, document.querySelector('.topbar').scrollHeight]"
    )
    assert content <= height


def test_on_a_tablet_an_admins_nav_folds_behind_the_menu(open_page, long_named_admin):
    page = open_page(viewport={"width": 1100, "height": 768})
    log_in(page, long_named_admin.get_username())
    page.goto("/tasks/")
    expect(page.locator(".mainnav")).to_be_hidden()

    page.locator(".navmenu > summary").click()

    expect(page.locator(".mainnav").get_by_role("link", name="Alerts")).to_be_visible()
    assert page.evaluate(NAV_LINKS_OUT_OF_SIGHT) == []


# --- Enter in a one-line builder field ---------------------------------------------------------------------


def _fill_a_valid_task(page):
    page.get_by_label("User prompt").fill("Which amusement parks in France are most recommended?")
    page.get_by_label("Model").select_option("gpt-4.1-mini")
    page.get_by_label("Tag").fill("enter-key")


@pytest.mark.parametrize("javascript", [True, False], ids=["with JavaScript", "without JavaScript"])
def test_enter_in_a_one_line_field_submits_the_task_and_adds_no_turn(open_page, walk, javascript):
    page = open_page(java_script_enabled=javascript)
    log_in(page, walk["admin"].get_username())
    before = set(Task.objects.values_list("pk", flat=True))
    page.goto("/new/")
    _fill_a_valid_task(page)
    if javascript:
        expect(page.locator("#submit-button")).to_be_enabled()

    page.get_by_label("Tag").press("Enter")

    page.wait_for_url(TASK_URL)
    (task,) = Task.objects.exclude(pk__in=before)
    assert page.url.endswith(f"/tasks/{task.pk}/")
    assert task.tag == "enter-key"
    assert not task.request_body.get("message_chain")


def test_enter_pressed_before_the_live_validation_caught_up_still_submits_the_task(open_page, walk):
    """Typing fast and pressing Enter: the button is still disabled by the answer about the empty form."""
    page = open_page()
    log_in(page, walk["admin"].get_username())
    before = set(Task.objects.values_list("pk", flat=True))
    page.goto("/new/")
    expect(page.locator("#submit-button")).to_be_disabled()
    held = []

    def hold_validation(route):
        if held is None:
            route.continue_()
        else:
            held.append(route)

    page.route("**/new/validate/", hold_validation)
    _fill_a_valid_task(page)
    expect(page.locator("#submit-button")).to_be_disabled()

    page.get_by_label("Tag").press("Enter")
    for route in held:
        route.continue_()
    held = None

    page.wait_for_url(TASK_URL)
    (task,) = Task.objects.exclude(pk__in=before)
    assert task.tag == "enter-key"
    assert not task.request_body.get("message_chain")


def test_enter_does_nothing_while_the_form_is_invalid(open_page, walk):
    page = open_page()
    log_in(page, walk["admin"].get_username())
    page.goto("/new/")
    page.get_by_label("Tag").fill("no prompt yet")
    expect(page.locator("#submit-button")).to_be_disabled()
    count = Task.objects.count()

    page.get_by_label("Tag").press("Enter")

    page.wait_for_timeout(500)
    assert page.url.endswith("/new/")
    expect(page.get_by_label("Turn 1 message")).to_have_count(0)
    expect(page.get_by_label("Tag")).to_have_value("no prompt yet")
    assert Task.objects.count() == count


def test_without_javascript_enter_on_an_invalid_form_shows_the_errors_and_adds_no_turn(
    open_page, walk, browser_errors
):
    page = open_page(java_script_enabled=False)
    log_in(page, walk["admin"].get_username())
    page.goto("/new/")
    page.get_by_label("Tag").fill("no prompt yet")
    count = Task.objects.count()

    page.get_by_label("Tag").press("Enter")

    page.wait_for_load_state()
    expect(page.locator("#errors-user_prompt")).not_to_be_empty()
    expect(page.get_by_label("Turn 1 message")).to_have_count(0)
    expect(page.get_by_label("Tag")).to_have_value("no prompt yet")
    assert Task.objects.count() == count
    # The refused form comes back with 422, which Chromium logs; that status is the point here.
    browser_errors[:] = [error for error in browser_errors if "status of 422" not in error]


def test_without_javascript_switching_provider_keeps_the_typed_prompt(open_page, walk):
    page = open_page(java_script_enabled=False)
    log_in(page, walk["admin"].get_username())
    page.goto("/new/")
    page.get_by_label("User prompt").fill("Carry me over to Claude")
    page.get_by_label("Tag").fill("switch-test")

    page.get_by_role("button", name="Claude").click()

    page.wait_for_load_state()
    expect(page.get_by_label("Use reasoning")).to_be_visible()
    expect(page.get_by_label("User prompt")).to_have_value("Carry me over to Claude")
    expect(page.get_by_label("Tag")).to_have_value("switch-test")
    assert not Task.objects.filter(tag="switch-test").exists()


# --- Feedback while sending ------------------------------------------------------------------------------
# The post is answered "204 No Content", which leaves the page where it is, as a slow upstream would while
# the request is under way: what the person sees then is what is checked.

STATE = """(selector) => {
  const button = document.querySelector(selector);
  return {disabled: button.disabled, text: button.textContent.trim()};
}"""


def _hold_posts(page, pattern) -> list:
    posts = []

    def answer_nothing_yet(route):
        if route.request.method != "POST":
            route.continue_()
            return
        posts.append(route.request.post_data)
        route.fulfill(status=204)

    page.route(pattern, answer_nothing_yet)
    return posts


def test_submit_says_sending_at_once_and_cannot_be_pressed_twice(open_page, walk):
    page = open_page()
    log_in(page, walk["admin"].get_username())
    posts = _hold_posts(page, "**/new/")
    page.goto("/new/")
    _fill_a_valid_task(page)
    expect(page.locator("#submit-button")).to_be_enabled()

    page.locator("#submit-button").click()

    expect(page.locator("#submit-button")).to_be_disabled()
    assert page.evaluate(STATE, "#submit-button") == {"disabled": True, "text": "Sending…"}
    page.get_by_label("Tag").press("Enter")
    page.evaluate("document.getElementById('builder-form').requestSubmit()")
    page.wait_for_timeout(300)
    assert len(posts) == 1


def test_a_batch_confirm_says_sending_and_cannot_be_pressed_twice(open_page, walk):
    page = open_page()
    log_in(page, walk["admin"].get_username())
    template = PromptTemplate.objects.get(name="Parks by country")
    page.goto(f"/templates/{template.pk}/batch/")
    page.get_by_label("Rows (CSV)").fill("country\nFrance\nSpain")
    page.get_by_role("button", name="Check rows and cost").click()
    expect(page.get_by_role("button", name="Submit 2 tasks")).to_be_visible()
    confirm = page.locator('button[name="confirm"][value="1"]')
    posts = _hold_posts(page, "**/batch/")

    confirm.click()

    expect(confirm).to_be_disabled()
    assert page.evaluate(STATE, 'button[name="confirm"][value="1"]') == {
        "disabled": True,
        "text": "Sending 2 tasks…",
    }
    page.evaluate("document.getElementById('plan').closest('form').requestSubmit()")
    page.wait_for_timeout(300)
    assert len(posts) == 1
    assert "confirm" in posts[0]  # the pressed button's name and value went with the form
