"""Budgets: refusal before anything is sent, atomic reservation under concurrency, settling, pages."""

import re
import threading
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from django.test import Client
from django.urls import reverse

from tasks.models import AuditEntry, Budget, Task
from tasks.spend import views
from tasks.spend.budgets import (
    BudgetExceeded,
    budget_spent,
    budget_warnings,
    budgets_reserve,
    month_start,
)
from tasks.submission import collection, sending
from tasks.upstream import clients
from tasks.upstream.outcomes import StatusClass, TaskOutcome
from tests.concurrency import run_concurrently
from tests.factories import make_credential, make_task, make_user
from tests.submission.fake_upstream import CHARGE, FakeUpstream
from tests.submission.sending import send_planned


@pytest.fixture
def fake_upstream(monkeypatch):
    upstream = FakeUpstream()
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    return upstream


def _spec(tag: str = "", n: int = 0) -> sending.TaskSpec:
    body = {"user_prompt": f"Prompt {n}", "model_name": "gpt-4.1-mini"}
    if tag:
        body["tag"] = tag
    return sending.TaskSpec(provider="chat_gpt", body=body)


def _submit(user, credential, count: int = 1, tag: str = ""):
    return sending.submit_tasks(specs=[_spec(tag, n) for n in range(count)], credential=credential, user=user)


# --- Refusal ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_submission_over_the_team_limit_is_refused_before_anything_is_sent(fake_upstream, member_user):
    credential = make_credential()
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE * 3)
    _submit(member_user, credential, count=2)

    with pytest.raises(BudgetExceeded) as refused:
        _submit(member_user, credential, count=2)

    assert "Team budget would be exceeded" in str(refused.value)
    assert "Nothing was sent" in str(refused.value)
    assert Task.objects.count() == 2
    send_planned()  # a worker sends what was planned
    assert len(fake_upstream.posted) == 2


@pytest.mark.django_db
def test_a_batch_is_refused_whole_when_only_part_of_it_fits(fake_upstream, member_user):
    credential = make_credential()
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE * 3)

    with pytest.raises(BudgetExceeded):
        _submit(member_user, credential, count=5)

    assert Task.objects.count() == 0
    send_planned()  # a worker sends what was planned
    assert fake_upstream.posted == []


@pytest.mark.django_db
def test_person_and_tag_budgets_only_limit_their_own_tasks(fake_upstream, member_user):
    credential = make_credential()
    other = make_user("other")
    Budget.objects.create(scope=Budget.Scope.PERSON, user=member_user, monthly_limit=CHARGE)
    Budget.objects.create(scope=Budget.Scope.TAG, tag="campaign", monthly_limit=CHARGE * 2)

    _submit(member_user, credential)
    with pytest.raises(BudgetExceeded, match="Budget for member"):
        _submit(member_user, credential)
    _submit(other, credential, count=2, tag="campaign")
    with pytest.raises(BudgetExceeded, match="tag campaign"):
        _submit(other, credential, tag="campaign")
    _submit(other, credential, count=3, tag="another")

    assert Task.objects.count() == 6


@pytest.mark.django_db
def test_an_inactive_budget_does_not_refuse(fake_upstream, member_user):
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("0"), is_active=False)

    _submit(member_user, make_credential(), count=3)

    assert Task.objects.count() == 3


@pytest.mark.django_db
def test_only_this_months_spend_counts(fake_upstream, member_user):
    credential = make_credential()
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE)
    make_task(created_at=month_start() - month_start().resolution * 1_000_000, spend=Decimal("5"))

    _submit(member_user, credential)

    assert budget_spent(budget) == CHARGE


@pytest.mark.django_db
def test_reservations_settle_to_the_final_cost(fake_upstream, member_user):
    credential = make_credential()
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("1"))
    [task] = _submit(member_user, credential)
    assert budget_spent(budget) == CHARGE

    outcome = TaskOutcome(
        id=task.upstream_task_id,
        status_code=20000,
        status_message="Ok.",
        status_class=StatusClass.DONE,
        cost=Decimal("0.0032"),
        data={},
        result=[{"money_spent": 0.003, "items": []}],
        raw={},
    )
    collection.task_apply_outcome(task=task, outcome=outcome, source="polled")

    assert budget_spent(budget) == Decimal("0.0032")


def test_the_reservation_must_run_inside_the_creating_transaction(transactional_db, member_user):
    with pytest.raises(RuntimeError):
        budgets_reserve(user=member_user, charges=[("", CHARGE)])


@pytest.mark.django_db
def test_warnings_at_the_threshold_and_when_used_up(member_user):
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("1.00"))
    Budget.objects.create(scope=Budget.Scope.TAG, tag="x", monthly_limit=Decimal("0.50"))
    make_task(spend=Decimal("0.79"), tag="y")
    assert budget_warnings() == []

    make_task(spend=Decimal("0.01"), tag="y")
    make_task(spend=Decimal("0.10"), tag="x")
    make_task(spend=Decimal("0.45"), tag="x", created_at=month_start().replace(year=2000))

    warnings = budget_warnings()
    assert len(warnings) == 1 and warnings[0].startswith("Team budget is at 90%")

    make_task(spend=Decimal("0.40"), tag="x")
    warnings = budget_warnings()
    assert any("tag x is used up" in w for w in warnings)


@pytest.mark.django_db
def test_the_warning_banner_shows_on_every_page_for_everyone(member_client):
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("1.00"))
    make_task(spend=Decimal("0.85"))

    response = member_client.get(reverse("history:home"))

    assert "Team budget is at 85%" in response.content.decode()


@pytest.mark.django_db
def test_a_zero_limit_is_used_up_in_the_banner_and_the_list(member_client, team_admin_client):
    """A $0 budget (spending frozen) refuses every submission: the banner says it is used up, and the
    list shows it full, not "0%" beside "Used up"."""
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("0"))

    home = member_client.get(reverse("history:home")).content.decode()
    budgets = team_admin_client.get(reverse("spend:budget_list")).content.decode()

    assert "Team budget is used up" in home
    assert "Used up" in budgets
    assert '<span class="small">100%</span>' in budgets


# --- Concurrency ------------------------------------------------------------------------------------

THREADS = 40
FITS = 10


@pytest.fixture
def concurrent_setup(transactional_db, fake_upstream):
    users = [make_user(f"person-{i}") for i in range(THREADS)]
    credential = make_credential()
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE * FITS)
    return users, credential, fake_upstream


def test_forty_parallel_submissions_against_a_budget_for_ten_accept_exactly_ten(concurrent_setup):
    users, credential, upstream = concurrent_setup

    results = run_concurrently(lambda i: _submit(users[i], credential), THREADS)

    accepted = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    others = [r for r in results if not isinstance(r, list | BudgetExceeded)]
    assert others == []
    assert len(accepted) == FITS
    assert len(refused) == THREADS - FITS
    assert Task.objects.count() == FITS
    send_planned()  # a worker sends what was planned
    assert len(upstream.posted) == FITS
    assert Task.objects.aggregate(total=Sum("spend"))["total"] == CHARGE * FITS


def test_control_without_the_atomic_reservation_the_same_load_overshoots(concurrent_setup, monkeypatch):
    """Proves the test above has teeth: check the budget outside the lock (check, then act) and the
    same 40 submissions all get through."""
    users, credential, _upstream = concurrent_setup
    monkeypatch.setattr(sending, "budgets_reserve", lambda *, user, charges: None)
    checked = threading.Barrier(THREADS)

    def unlocked_check_then_submit(i):
        with transaction.atomic():
            budget = Budget.objects.get(scope=Budget.Scope.TEAM)
            spent = budget_spent(budget)
        if spent + CHARGE > budget.monthly_limit:
            raise BudgetExceeded("over")
        checked.wait(timeout=30)  # everyone has read the budget before anyone writes
        return _submit(users[i], credential)

    results = run_concurrently(unlocked_check_then_submit, THREADS)

    accepted = [r for r in results if isinstance(r, list)]
    assert len(accepted) > FITS
    assert Task.objects.count() > FITS


# --- Pages ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_sets_edits_and_deletes_budgets_and_each_change_is_audited(team_admin_client, member_user):
    response = team_admin_client.post(
        reverse("spend:budget_create"),
        {"scope": "team", "monthly_limit": "250", "warn_percent": "75", "is_active": "on"},
    )
    assert response.status_code == 302
    budget = Budget.objects.get(scope="team")
    assert (budget.monthly_limit, budget.warn_ratio) == (Decimal("250"), Decimal("0.75"))

    team_admin_client.post(
        reverse("spend:budget_edit", args=[budget.pk]),
        {"scope": "team", "monthly_limit": "300", "warn_percent": "80", "is_active": "on"},
    )
    team_admin_client.post(
        reverse("spend:budget_create"),
        {
            "scope": "person",
            "user": member_user.pk,
            "monthly_limit": "20",
            "warn_percent": "80",
            "is_active": "on",
        },
    )
    team_admin_client.post(reverse("spend:budget_delete", args=[budget.pk]))

    assert list(Budget.objects.values_list("scope", flat=True)) == ["person"]
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["budget.create", "budget.update", "budget.create", "budget.delete"]
    update = AuditEntry.objects.get(action="budget.update")
    assert update.changes == {
        "monthly_limit": {"from": "250", "to": "300"},
        "warn_ratio": {"from": "0.75", "to": "0.8"},
    }


@pytest.mark.django_db
def test_saving_a_budget_unchanged_adds_nothing_to_the_audit_log(team_admin_client):
    """As for credentials, people and roles: the audit log only records a change that happened."""
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("250"))

    response = team_admin_client.post(
        reverse("spend:budget_edit", args=[budget.pk]),
        {"scope": "team", "monthly_limit": "250.00", "warn_percent": "80", "is_active": "on"},
        follow=True,
    )

    assert "Saved the team budget." in response.content.decode()
    assert not AuditEntry.objects.filter(action="budget.update").exists()


@pytest.mark.django_db
def test_the_edit_page_opens_with_the_budgets_own_values(team_admin_client, member_user):
    """Not a blank team budget: saving that page as it came would have turned a tag's budget into the
    team's, with whatever limit was typed."""
    tag_budget = Budget.objects.create(
        scope=Budget.Scope.TAG, tag="hotels", monthly_limit=Decimal("12.50"), warn_ratio=Decimal("0.6")
    )
    person_budget = Budget.objects.create(
        scope=Budget.Scope.PERSON, user=member_user, monthly_limit=Decimal("3"), is_active=False
    )

    html = team_admin_client.get(reverse("spend:budget_edit", args=[tag_budget.pk])).content.decode()
    assert re.search(r'<input type="radio" name="scope" value="tag"[^>]* checked', html)
    assert 'name="tag" value="hotels"' in html
    assert 'name="monthly_limit" value="12.50"' in html
    assert 'name="warn_percent" value="60"' in html

    html = team_admin_client.get(reverse("spend:budget_edit", args=[person_budget.pk])).content.decode()
    assert re.search(r'<input type="radio" name="scope" value="person"[^>]* checked', html)
    assert re.search(rf'<option value="{member_user.pk}" selected>', html)
    assert not re.search(r'name="is_active"[^>]* checked', html)


@pytest.mark.django_db
def test_a_budget_set_more_precisely_elsewhere_survives_its_edit_page_saved_unchanged(team_admin_client):
    """A limit of 12.345 (set in the Django admin) showed as 12.34 and a warning at 75.5% as 75: saving
    the page as it came silently lowered both."""
    budget = Budget.objects.create(
        scope=Budget.Scope.TEAM, monthly_limit=Decimal("12.345"), warn_ratio=Decimal("0.755")
    )
    url = reverse("spend:budget_edit", args=[budget.pk])

    html = team_admin_client.get(url).content.decode()
    limit = re.search(r'name="monthly_limit" value="([^"]*)"', html).group(1)
    warn = re.search(r'name="warn_percent" value="([^"]*)"', html).group(1)
    assert (limit, warn) == ("12.345", "75.5")
    response = team_admin_client.post(
        url, {"scope": "team", "monthly_limit": limit, "warn_percent": warn, "is_active": "on"}
    )

    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.monthly_limit, budget.warn_ratio) == (Decimal("12.345"), Decimal("0.755"))
    assert not AuditEntry.objects.filter(action="budget.update").exists()


@pytest.mark.django_db
def test_a_limit_of_minus_zero_is_saved_and_audited_as_zero(team_admin_client):
    response = team_admin_client.post(
        reverse("spend:budget_create"),
        {"scope": "team", "monthly_limit": "-0", "warn_percent": "80", "is_active": "on"},
    )

    assert response.status_code == 302
    assert not Budget.objects.get().monthly_limit.is_signed()
    assert AuditEntry.objects.get(action="budget.create").changes["monthly_limit"] == "0"


@pytest.mark.django_db
def test_the_budget_of_a_deactivated_person_can_still_be_edited(team_admin_client, member_user):
    """Their person is not offered for new budgets, but their own budget keeps them: without it, its edit
    page chose nobody and could not be saved (to lower it or switch it off)."""
    budget = Budget.objects.create(scope=Budget.Scope.PERSON, user=member_user, monthly_limit=Decimal("3"))
    member_user.is_active = False
    member_user.save()
    url = reverse("spend:budget_edit", args=[budget.pk])

    html = team_admin_client.get(url).content.decode()
    assert re.search(rf'<option value="{member_user.pk}" selected>', html)
    response = team_admin_client.post(
        url, {"scope": "person", "user": str(member_user.pk), "monthly_limit": "2.00", "warn_percent": "80"}
    )

    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.monthly_limit, budget.is_active) == (Decimal("2.00"), False)
    new_budget_page = team_admin_client.get(reverse("spend:budget_create")).content.decode()
    assert f'<option value="{member_user.pk}"' not in new_budget_page


@pytest.mark.django_db
def test_the_budget_list_shows_use_against_each_limit(team_admin_client):
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("1.00"))
    make_task(spend=Decimal("0.25"))

    html = team_admin_client.get(reverse("spend:budget_list")).content.decode()

    assert "Team budget" in html and "$0.2500" in html and "25%" in html


@pytest.mark.django_db
def test_a_threshold_with_a_decimal_reads_as_set_beside_the_use_that_crossed_it(team_admin_client):
    """A warning at 82.5% (the form takes one decimal) read "Warn at 82%" (rounded half to even) and
    82.6% used read "82%", so the list said Warning beside a use under the threshold shown."""
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("1.00"), warn_ratio=Decimal("0.825"))
    make_task(spend=Decimal("0.826"))

    html = team_admin_client.get(reverse("spend:budget_list")).content.decode()

    assert '<td class="num">82.5%</td>' in html
    assert '<span class="small">82.6%</span>' in html and "Warning" in html
    assert budget_warnings()[0].startswith("Team budget is at 82.6%")


@pytest.mark.django_db
def test_a_little_spent_of_a_large_limit_does_not_read_as_nothing_used(team_admin_client):
    """$1.23 of a $100,000 limit read "0%" used beside "$1.2346" spent; it reads "<0.1%"."""
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("100000"))
    make_task(spend=Decimal("1.234567"))

    html = team_admin_client.get(reverse("spend:budget_list")).content.decode()

    assert '<span class="small">&lt;0.1%</span>' in html


@pytest.mark.django_db
def test_a_budget_is_named_in_a_sentence_on_its_pages_and_messages(team_admin_client):
    """Not "Delete Budget for tag coffee?" nor "Budget for tag coffee saved.": the tag quoted, the name
    in lower case mid-sentence."""
    budget = Budget.objects.create(scope=Budget.Scope.TAG, tag="coffee", monthly_limit=Decimal("1"))

    edit = team_admin_client.get(reverse("spend:budget_edit", args=[budget.pk])).content.decode()
    delete = team_admin_client.get(reverse("spend:budget_delete", args=[budget.pk])).content.decode()
    saved = team_admin_client.post(
        reverse("spend:budget_edit", args=[budget.pk]),
        {"scope": "tag", "tag": "coffee", "monthly_limit": "2", "warn_percent": "80", "is_active": "on"},
        follow=True,
    ).content.decode()

    assert "<h1>Edit the budget of tag “coffee”</h1>" in edit
    assert "<h1>Delete the budget of tag “coffee”?</h1>" in delete
    assert "Saved the budget of tag “coffee”." in saved


@pytest.mark.django_db
def test_without_any_budget_the_list_says_so_once(team_admin_client):
    """Not also "only person and tag limits apply" above an empty table: there are none."""
    html = team_admin_client.get(reverse("spend:budget_list")).content.decode()

    assert "No budgets yet. Without one, nothing limits what the team can submit." in html
    assert "There is no team budget" not in html

    Budget.objects.create(scope=Budget.Scope.TAG, tag="coffee", monthly_limit=Decimal("1"))
    html = team_admin_client.get(reverse("spend:budget_list")).content.decode()
    assert "There is no team budget: only person and tag limits apply." in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scope": "person", "monthly_limit": "10", "warn_percent": "80"}, "Choose the person"),
        ({"scope": "tag", "tag": "  ", "monthly_limit": "10", "warn_percent": "80"}, "Give the tag"),
        ({"scope": "team", "monthly_limit": "-1", "warn_percent": "80"}, "A limit cannot be negative"),
        ({"scope": "team", "monthly_limit": "ten", "warn_percent": "80"}, "Enter a number"),
        ({"scope": "team", "monthly_limit": "1234567", "warn_percent": "80"}, "Must be under $1,000,000."),
        ({"scope": "team", "monthly_limit": "1.0000001", "warn_percent": "80"}, "At most 6 decimals."),
        ({"scope": "team", "monthly_limit": "10", "warn_percent": "180"}, "Must be between 1 and 100."),
        ({"scope": "team", "monthly_limit": "10", "warn_percent": "0.5"}, "Must be between 1 and 100."),
        ({"scope": "team", "monthly_limit": "10", "warn_percent": "82.55"}, "At most one decimal"),
        ({"scope": "galaxy", "monthly_limit": "10", "warn_percent": "80"}, "Select a valid choice"),
    ],
)
def test_bad_budget_input_is_explained_and_kept(team_admin_client, data, message):
    response = team_admin_client.post(reverse("spend:budget_create"), data)

    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert "Ensure " not in html  # Django's own wording, not the form's
    assert f'value="{data["monthly_limit"]}"' in html
    assert not Budget.objects.exists()


@pytest.mark.django_db
def test_a_second_team_budget_is_refused_with_a_pointer_to_the_first(team_admin_client):
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("1"))

    response = team_admin_client.post(
        reverse("spend:budget_create"), {"scope": "team", "monthly_limit": "5", "warn_percent": "80"}
    )

    assert "already a team budget" in response.content.decode()
    assert Budget.objects.count() == 1


def test_two_presses_of_save_add_one_tag_budget_and_no_server_error(
    transactional_db, team_admin, monkeypatch
):
    """Save pressed twice on Add a budget (no script to stop the second press, or two Admins): both
    requests pass the form's check before either saves; the second is told the tag has a budget."""
    both_checked = threading.Barrier(2)
    save = views.budget_save

    def budget_save(**kwargs):
        both_checked.wait(timeout=10)
        return save(**kwargs)

    monkeypatch.setattr(views, "budget_save", budget_save)

    def press(i):
        client = Client()
        client.force_login(team_admin)
        return client.post(
            reverse("spend:budget_create"),
            {"scope": "tag", "tag": "hotels", "monthly_limit": "25", "warn_percent": "80", "is_active": "on"},
        )

    responses = run_concurrently(press, 2)

    assert sorted((getattr(r, "status_code", r) for r in responses), key=str) == [200, 302]
    refused = next(r for r in responses if r.status_code == 200).content.decode()
    assert "The tag “hotels” already has a budget; edit that one." in refused
    assert 'name="monthly_limit" value="25"' in refused
    assert Budget.objects.count() == 1


@pytest.mark.django_db
def test_the_warning_and_the_refusal_show_money_to_four_decimals_like_the_budgets_page(member_user):
    """$0.0204 of a $0.03 budget is not “$0.02 of $0.03 … $0.0096 left”: the figures must add up."""
    Budget.objects.create(
        scope=Budget.Scope.TAG, tag="capped", monthly_limit=Decimal("0.03"), warn_ratio=Decimal("0.5")
    )
    make_task(spend=Decimal("0.0204"), tag="capped")

    warning = "Budget for tag capped is at 68%: $0.0204 of $0.0300 this month, $0.0096 left."
    assert budget_warnings() == [warning]
    with pytest.raises(BudgetExceeded) as refused, transaction.atomic():
        budgets_reserve(user=member_user, charges=[("capped", Decimal("0.0102"))])
    assert "$0.0204 of $0.0300 is already spent or reserved" in str(refused.value)

    make_task(spend=Decimal("0.0100"), tag="capped")
    assert budget_warnings() == [
        "Budget for tag capped is used up: $0.0304 of $0.0300 this month. "
        "New submissions that count against it are refused."
    ]
