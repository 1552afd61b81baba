"""The new-task page, its live validation, preview, submit and model refresh; htmx and plain paths."""

import re
from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse

from sandbox import stats
from tasks.models import Credential, ProviderModel, Task
from tasks.upstream.outcomes import UpstreamError
from tests.factories import form_data, make_catalog, make_member, make_task
from tests.submission.sending import send_planned

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def catalog(db):
    make_catalog()


@pytest.fixture
def live_member_client(client, django_user_model):
    """A member's client for tests over live_server, which may run after a flush removed the roles."""
    client.force_login(make_member(django_user_model))
    return client


def validate(client, data, trigger):
    return client.post(reverse("builder:validate"), {**data, "trigger_field": trigger}, **HTMX)


def errors_in(html: str, field: str) -> str:
    match = re.search(rf'<div id="errors-{field}"[^>]*>(.*?)</div>', html, re.S)
    assert match, f"no error container for {field}"
    return match.group(1)


# --- the page -----------------------------------------------------------------------------------------


def test_the_page_shows_every_field_of_the_provider(member_client, credential):
    html = member_client.get(reverse("builder:new")).content.decode()

    for name in ("user_prompt", "system_message", "max_output_tokens", "temperature", "top_p", "web_search",
                 "force_web_search", "web_search_country_iso_code", "web_search_city", "tag"):  # fmt: skip
        assert f'name="{name}"' in html
    assert 'name="use_reasoning"' not in html
    assert 'placeholder="0.94"' in html  # the upstream default, shown not sent
    assert "Add a turn" in html


def test_claude_has_use_reasoning_and_a_country_list(member_client, credential):
    html = member_client.get(reverse("builder:new") + "?provider=claude").content.decode()

    assert 'name="use_reasoning"' in html
    assert '<option value="ZA">ZA</option>' in html
    assert 'placeholder="0.7"' in html


def test_the_provider_switch_answers_htmx_with_the_builder_fragment_and_keeps_values(
    member_client, credential
):
    response = member_client.get(
        reverse("builder:new") + "?switch=claude&user_prompt=Keep+me&model_name=gpt-4.1", **HTMX
    )

    html = response.content.decode()
    assert "<html" not in html
    assert 'id="builder"' in html
    assert "Keep me" in html
    assert 'value="gpt-4.1" selected' not in html  # not a Claude model


def test_the_provider_switch_retitles_the_page_for_the_new_provider(member_client, credential):
    response = member_client.get(reverse("builder:new") + "?switch=claude", **HTMX)

    # htmx takes the document's title from a <title> in the response: the tab and the history entry of
    # ?provider=claude say Claude, not the provider the page was opened on.
    titles = re.findall(r"<title>(.*?)</title>", response.content.decode())
    assert titles == ["New Claude task · LLM Responses"]


def test_models_that_cannot_be_queued_are_listed_as_live_only(member_client, credential):
    html = member_client.get(reverse("builder:new")).content.decode()

    assert re.search(r'<option value="o1-pro">o1-pro \(reasoning, live only\)', html)
    assert "o3-mini (reasoning, web search)" in html


def test_no_models_yet_shows_the_refresh_state(member_client, credential):
    ProviderModel.objects.all().delete()

    html = member_client.get(reverse("builder:new")).content.decode()

    assert "No ChatGPT models yet" in html
    assert "Refresh models" in html


def test_a_person_without_add_task_is_refused(client, django_user_model, credential):
    client.force_login(django_user_model.objects.create_user("viewer", password="x"))

    assert client.get(reverse("builder:new")).status_code == 403
    assert client.post(reverse("builder:validate"), {}).status_code == 403


# --- live validation -------------------------------------------------------------------------------------


def test_validation_of_a_valid_field_shows_no_error(member_client, credential):
    html = validate(
        member_client, form_data("chat_gpt", credential, temperature="0.5"), "temperature"
    ).content.decode()

    assert errors_in(html, "temperature") == ""
    assert "disabled" not in re.search(r'<button type="submit" id="submit-button"[^>]*>', html).group(0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", "-0.1", "Must be between 0 and 2."),
        ("top_p", "1.5", "Must be between 0 and 1."),
        ("max_output_tokens", "99999", "Must be at most 4096."),
    ],
)
def test_a_number_out_of_range_is_said_in_the_forms_own_words(
    member_client, credential, field, value, message
):
    """Not Django's "Ensure this value is less than or equal to 2.0.", beside "Must be at least 16." and
    "At most 255 characters" on the same form: the range, its numbers written as typed."""
    html = validate(
        member_client, form_data("chat_gpt", credential, **{field: value}), field
    ).content.decode()

    assert errors_in(html, field) == f'<p class="error">{message}</p>'


def test_validation_of_an_invalid_field_shows_its_error(member_client, credential):
    html = validate(
        member_client, form_data("chat_gpt", credential, temperature="2.5"), "temperature"
    ).content.decode()

    assert "Must be between 0 and 2." in errors_in(html, "temperature")
    assert re.search(r'<button type="submit" id="submit-button"[^>]*disabled', html)
    assert "Submit is disabled until this is fixed" in html


def test_cross_field_errors_show_beside_each_field_they_concern(member_client, credential):
    data = form_data("chat_gpt", credential, temperature="0.5", top_p="0.5")

    html = validate(member_client, data, "top_p").content.decode()

    assert "Set temperature or top p, not both." in errors_in(html, "temperature")
    assert "Set temperature or top p, not both." in errors_in(html, "top_p")


def test_a_reasoning_model_error_clears_when_the_model_changes(member_client, credential):
    data = form_data("chat_gpt", credential, model_name="o3-mini", temperature="0.5")
    html = validate(member_client, data, "model_name").content.decode()
    assert "reasoning model" in errors_in(html, "temperature")

    data["model_name"] = "gpt-4.1"
    html = validate(member_client, data, "model_name").content.decode()
    assert errors_in(html, "temperature") == ""
    assert errors_in(html, "model_name") == ""


def test_required_errors_only_show_on_the_field_being_edited(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt=None)

    html = validate(member_client, data, "tag").content.decode()
    assert errors_in(html, "user_prompt") == ""
    assert "User prompt: Enter a user prompt." in html  # but the submit button says why

    html = validate(member_client, data, "user_prompt").content.decode()
    assert "Enter a user prompt." in errors_in(html, "user_prompt")


def test_validation_swaps_only_error_containers_preview_and_button_never_inputs(member_client, credential):
    html = validate(member_client, form_data("chat_gpt", credential), "user_prompt").content.decode()

    assert "<input" not in html.replace('<input type="hidden" name="variables_shown"', "")
    assert "<textarea" not in html
    assert all('hx-swap-oob="true"' in tag for tag in re.findall(r'<(?:div|section) id="[^"]+"[^>]*>', html)
               if 'id="errors-' in tag or 'id="preview"' in tag or 'id="submit-area"' in tag)  # fmt: skip


def test_a_check_answers_with_the_submit_buttons_state_never_the_submit_area(member_client, credential):
    """The button is drawn as it should be now, for builder.js to update the one on the page in place: a
    replaced button loses a press under way. The rest of the submit area ("Monitor this request") is left."""
    invalid = validate(
        member_client, form_data("chat_gpt", credential, temperature="2.5"), "temperature"
    ).content.decode()
    valid = validate(member_client, form_data("chat_gpt", credential), "user_prompt").content.decode()

    for html in (invalid, valid):
        assert 'id="submit-area"' not in html and "Monitor this request" not in html
        assert html.count('id="submit-button"') == 1
    button = '<button type="submit" id="submit-button" class="primary" data-sending-label="Sending…"'
    assert '<div id="submit-reason" class="submit-reason" role="status" hx-swap-oob="true">' in invalid
    assert "Temperature: Must be between 0 and 2." in invalid
    assert f'{button} disabled aria-describedby="submit-reason" hx-swap-oob="true">Submit task · ' in invalid
    assert '<div id="submit-reason" class="submit-reason" role="status" hidden hx-swap-oob="true">' in valid
    enabled = re.escape(f'{button} hx-swap-oob="true">Submit task · ') + r"<span[^>]*>\$0\.0102<"
    assert re.search(enabled, valid)


def test_the_page_draws_the_whole_submit_area_with_the_reasons_hidden_when_none(member_client, credential):
    page = member_client.get(reverse("builder:new")).content.decode()  # no prompt yet
    task = make_task(credential=credential)
    filled = member_client.get(reverse("builder:new") + f"?from_task={task.pk}").content.decode()

    for html in (page, filled):
        area = re.search(r'<div id="submit-area".*?</button>\s*</div>', html, re.S).group(0)
        assert "hx-swap-oob" not in area and "Monitor this request" in area
        assert "disabled" not in re.search(r'<button type="submit" id="submit-button"[^>]*>', area).group(0)
    assert "To fix before submitting:" in page and "User prompt: Enter a user prompt." in page
    assert '<div id="submit-reason" class="submit-reason" role="status" hidden>' in filled


def test_the_validation_endpoint_saves_nothing(member_client, credential):
    validate(member_client, form_data("chat_gpt", credential), "user_prompt")

    assert Task.objects.count() == 0


def test_length_limits_are_checked_with_the_variables_filled(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt="x" * 495 + "{{city}}", var_city="Paris")
    html = validate(member_client, data, "var_city").content.decode()
    assert errors_in(html, "user_prompt") == ""

    data["var_city"] = "San Francisco"
    html = validate(member_client, data, "var_city").content.decode()
    assert "At most 500 characters (508 with the variables filled in)." in errors_in(html, "user_prompt")


def test_a_new_variable_brings_its_input(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt="Weather in {{city}}?", variables_shown="")

    html = validate(member_client, data, "user_prompt").content.decode()

    assert '<div id="variables" class="variables" hx-swap-oob="true">' in html
    assert 'name="var_city"' in html
    # Its error container comes inside the new block only: an out-of-band swap aimed at it on its own
    # would find no target in the page yet (htmx:oobErrorNoTarget).
    assert html.count('id="errors-var_city"') == 1
    assert '<div id="errors-var_city" class="field-errors" aria-live="polite">' in html


def test_a_known_variables_errors_are_swapped_once(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt="Weather in {{city}}?", variables_shown="city")

    html = validate(member_client, data, "var_city").content.decode()

    assert 'id="variables"' not in html
    assert html.count('id="errors-var_city"') == 1
    assert '<div id="errors-var_city" class="field-errors" aria-live="polite" hx-swap-oob="true">' in html


def test_the_validation_endpoint_without_htmx_shows_every_error(member_client, credential):
    response = member_client.post(
        reverse("builder:validate"), form_data("chat_gpt", credential, user_prompt=None)
    )

    assert "Enter a user prompt." in errors_in(response.content.decode(), "user_prompt")


# --- preview ---------------------------------------------------------------------------------------------


def test_the_preview_shows_the_exact_body_endpoint_curl_and_charge(member_client, credential):
    credential.price_multiplier = Decimal("2")
    credential.save()
    data = form_data("claude", credential, temperature="0.3", web_search=True, tag="team-a")

    html = validate(member_client, data, "tag").content.decode()

    assert "/ai_optimization/claude/llm_responses/task_post" in html
    assert "&quot;temperature&quot;: 0.3," in html
    assert "&quot;web_search&quot;: true," in html
    assert "force_web_search" not in html.split('id="preview"')[1].split("</pre>")[0]  # only fields set
    assert "Bearer ****-key" in html
    assert "sandbox-key" not in html
    assert "$0.0204" in html  # 2 × ($0.01 + $0.0002)


def test_the_preview_masks_a_dataforseo_password(member_client):
    credential = Credential(name="direct", kind=Credential.Kind.DATAFORSEO, login="me@example.com")
    credential.set_secret("hunter2-password")
    credential.save()

    html = validate(member_client, form_data("chat_gpt", credential), "tag").content.decode()

    assert "-u &#x27;me@example.com:****&#x27;" in html
    assert "hunter2" not in html


def test_the_preview_shows_callback_placeholders_when_public_base_url_is_set(
    member_client, credential, settings
):
    settings.PUBLIC_BASE_URL = "https://dash.example.com"

    html = validate(member_client, form_data("chat_gpt", credential), "tag").content.decode()

    assert "pingback_url&quot;: &quot;https://dash.example.com/" in html
    assert "&lt;task-id&gt;" in html


# --- submit ----------------------------------------------------------------------------------------------


@pytest.fixture
def accepted_post():
    from tasks.upstream.outcomes import StatusClass, TaskOutcome

    def outcomes(provider, bodies):
        return [
            TaskOutcome(id=f"up-{i}", status_code=20100, status_message="Task Created.", data={}, raw={},
                        status_class=StatusClass.CREATED, cost=Decimal("0.0102"), result=None)
            for i, _ in enumerate(bodies)
        ]  # fmt: skip

    with mock.patch("tasks.upstream.clients.LLMResponsesClient") as client_class:
        client_class.for_credential.return_value.task_post.side_effect = outcomes
        yield client_class.for_credential.return_value.task_post


def test_a_plain_submit_creates_the_task_and_redirects_to_its_page(member_client, credential, accepted_post):
    response = member_client.post(reverse("builder:new"), form_data("chat_gpt", credential, tag="team-a"))

    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{task.pk}/"
    assert task.request_body["tag"] == "team-a"
    assert task.idempotency_key == "key-chat_gpt"
    assert task.status == Task.Status.QUEUED
    assert accepted_post.call_count == 0  # the request only plans: a worker sends
    send_planned()
    assert accepted_post.call_count == 1
    assert Task.objects.get().status == Task.Status.SUBMITTED


def test_an_htmx_submit_redirects_the_client(member_client, credential, accepted_post):
    response = member_client.post(reverse("builder:new"), form_data("chat_gpt", credential), **HTMX)

    assert response["HX-Redirect"] == f"/tasks/{Task.objects.get().pk}/"


def test_the_same_request_from_a_new_page_asks_before_it_is_sent_again(
    member_client, credential, accepted_post
):
    """Back after a submit, a reload or a second tab: a new page, a new idempotency key, the same request.
    Not sent until the person presses "Send it again"; a changed request, or one the upstream refused,
    goes at once."""
    first = member_client.post(reverse("builder:new"), form_data("chat_gpt", credential))
    earlier = Task.objects.get()

    again = member_client.post(
        reverse("builder:new"), {**form_data("chat_gpt", credential), "idempotency_key": "k2"}
    )

    page = again.content.decode()
    assert again.status_code == 422 and Task.objects.count() == 1
    assert "You sent this same request" in page and f"/tasks/{earlier.pk}/" in page
    assert (
        'name="send_again" value="1"' in page and "What is the capital of France?" in page
    )  # the input is kept
    send_planned()
    assert accepted_post.call_count == 1

    confirmed = {**form_data("chat_gpt", credential), "idempotency_key": "k2", "send_again": "1"}
    assert member_client.post(reverse("builder:new"), confirmed).status_code == 302
    assert member_client.post(reverse("builder:new"), confirmed).status_code == 302  # pressed twice: one task
    changed = {
        **form_data("chat_gpt", credential),
        "idempotency_key": "k3",
        "user_prompt": "What is the capital of Italy?",
    }
    assert member_client.post(reverse("builder:new"), changed).status_code == 302
    assert Task.objects.count() == 3 and first["Location"] == f"/tasks/{earlier.pk}/"

    Task.objects.update(status=Task.Status.FAILED)  # refused upstream: sending it again is no repeat
    retried = {**form_data("chat_gpt", credential), "idempotency_key": "k4"}
    assert member_client.post(reverse("builder:new"), retried).status_code == 302


def test_two_identical_submits_make_one_task_and_one_post(member_client, credential, accepted_post):
    data = form_data("chat_gpt", credential)

    first = member_client.post(reverse("builder:new"), data)
    second = member_client.post(reverse("builder:new"), data)

    assert Task.objects.count() == 1
    send_planned()
    assert accepted_post.call_count == 1
    assert first["Location"] == second["Location"]


def test_an_invalid_submit_keeps_the_input_and_shows_every_error(member_client, credential, accepted_post):
    data = form_data("chat_gpt", credential, user_prompt="Keep this text", temperature="0.5", top_p="0.5")

    response = member_client.post(reverse("builder:new"), data)

    html = response.content.decode()
    assert response.status_code == 422
    assert "Keep this text</textarea>" in html
    assert "Set temperature or top p, not both." in errors_in(html, "top_p")
    assert Task.objects.count() == 0
    assert accepted_post.call_count == 0


def test_a_budget_refusal_is_shown_at_the_top_with_the_form_filled(member_client, credential, accepted_post):
    from tasks.models import Budget

    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("0.001"))

    response = member_client.post(
        reverse("builder:new"), form_data("chat_gpt", credential, user_prompt="Mine")
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert "Team budget would be exceeded" in html
    assert "Mine</textarea>" in html


# --- budgets before submit --------------------------------------------------------------------------


def _budget_panel(html: str) -> str:
    """The builder's budget panel, with each amount as its shown text (the exact figure is its title)."""
    match = re.search(r'<section id="budgets".*?</section>', html, re.S)
    assert match, "no budget panel"
    return re.sub(r'<span class="money" title="[^"]*">(.*?)</span>', r"\1", match.group(0))


def test_the_page_shows_what_is_left_of_each_budget_that_applies(member_client, member_user, credential):
    from tasks.models import Budget

    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("5"))
    Budget.objects.create(scope=Budget.Scope.PERSON, user=member_user, monthly_limit=Decimal("2"))
    Budget.objects.create(scope=Budget.Scope.TAG, tag="other-tag", monthly_limit=Decimal("1"))
    make_task(spend=Decimal("0.25"), submitted_by=member_user)

    panel = _budget_panel(member_client.get(reverse("builder:new")).content.decode())

    assert "Left in the team budget</dt><dd>$4.7500" in panel
    assert "Left in your budget</dt><dd>$1.7500" in panel
    assert "other-tag" not in panel  # not this task's tag


def test_the_tags_budget_follows_the_tag_as_it_is_typed(member_client, credential):
    from tasks.models import Budget

    Budget.objects.create(scope=Budget.Scope.TAG, tag="team-a", monthly_limit=Decimal("0.5"))

    untagged = validate(member_client, form_data("chat_gpt", credential), "tag").content.decode()
    tagged = validate(member_client, form_data("chat_gpt", credential, tag="team-a"), "tag").content.decode()

    assert "team-a" not in _budget_panel(untagged)
    assert 'hx-swap-oob="true"' in _budget_panel(tagged)
    assert "Left in the budget of tag “team-a”</dt><dd>$0.5000" in _budget_panel(tagged)


def test_a_task_that_will_not_fit_is_said_so_and_submit_disabled_before_submitting(member_client, credential):
    """The banner would say "$0.01 left"; the builder says the task needs $0.0102 and $0.0100 is left."""
    from tasks.models import Budget

    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("0.01"))

    html = validate(member_client, form_data("chat_gpt", credential), "user_prompt").content.decode()

    reason = "This task needs $0.0102, the team budget has $0.0100 left this month."
    assert "Not enough left in the team budget for this task." in _budget_panel(html)
    submit = re.search(r'<div id="submit-reason".*?</button>', html, re.S).group(0)
    assert f"Budget: {reason}" in submit
    assert re.search(r'<button type="submit" id="submit-button" class="primary"[^>]* disabled', submit)
    full_page = member_client.get(reverse("builder:new")).content.decode()
    assert f"Budget: {reason}" in full_page  # listed without JavaScript too; the submit refuses it anyway


def test_a_task_that_fits_exactly_is_not_held_back(member_client, credential):
    from tasks.models import Budget

    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("0.0102"))

    html = validate(member_client, form_data("chat_gpt", credential), "user_prompt").content.decode()

    assert "Budget:" not in html
    assert "Left in the team budget</dt><dd>$0.0102" in _budget_panel(html)


def test_prefill_from_a_task_opens_its_request(member_client, credential, accepted_post):
    member_client.post(
        reverse("builder:new"), form_data("claude", credential, user_prompt="Again", temperature="0.2")
    )
    task = Task.objects.get()

    html = member_client.get(reverse("builder:new") + f"?from_task={task.pk}").content.decode()

    assert "Again</textarea>" in html
    assert 'name="temperature" value="0.2"' in html
    assert 'name="use_reasoning"' in html  # the Claude form
    assert (
        "aisa-dashboard:" not in html.split('name="tag"')[1].split(">")[0]
    )  # our own tag is not the person's


def test_prefill_from_an_unknown_task_is_a_404(member_client, credential):
    assert member_client.get(reverse("builder:new") + "?from_task=not-a-uuid").status_code == 404


# --- the message chain -----------------------------------------------------------------------------------


def test_chain_add_remove_and_move_work_without_javascript(member_client, credential):
    data = form_data("chat_gpt", credential)
    data.update(
        {
            "chain-0-role": "user",
            "chain-0-message": "first",
            "chain-1-role": "ai",
            "chain-1-message": "second",
        }
    )

    html = member_client.post(reverse("builder:new"), {**data, "chain_action": "up:1"}).content.decode()
    assert html.index("second</textarea>") < html.index("first</textarea>")

    html = member_client.post(reverse("builder:new"), {**data, "chain_action": "remove:0"}).content.decode()
    assert "first</textarea>" not in html and "second</textarea>" in html

    html = member_client.post(reverse("builder:new"), {**data, "chain_action": "add"}).content.decode()
    assert 'name="chain-2-message"' in html
    assert Task.objects.count() == 0


def test_after_a_chain_edit_the_focus_goes_to_the_turn_it_changed(member_client, credential):
    """The button pressed is redrawn away: `autofocus` (htmx honours it in a swap, a browser on a page load)
    puts the keyboard where the edit happened instead of the top of the page."""
    data = form_data("chat_gpt", credential)
    data.update(
        {"chain-0-role": "user", "chain-0-message": "a", "chain-1-role": "ai", "chain-1-message": "b"}
    )

    def focused(action, turns=data, **headers):
        html = member_client.post(reverse("builder:new"), {**turns, "chain_action": action}, **headers)
        tags = re.findall(r"<(?:textarea|button)[^>]*\bautofocus\b[^>]*>", html.content.decode())
        assert len(tags) == 1, (action, tags)
        return tags[0]

    assert 'aria-label="Turn 3 message"' in focused("add")
    assert 'aria-label="Turn 3 message"' in focused("add", **HTMX)
    assert 'aria-label="Move turn 2 up"' in focused("down:0", **HTMX)
    assert 'aria-label="Move turn 1 down"' in focused("up:1", **HTMX)
    assert 'aria-label="Remove turn 1"' in focused("remove:0", **HTMX)
    assert 'aria-label="Remove turn 1"' in focused("remove:1", **HTMX)  # the last one: the one before it
    one_turn = {k: v for k, v in data.items() if not k.startswith("chain-1-")}
    assert 'value="add"' in focused("remove:0", one_turn, **HTMX)


def test_chain_actions_with_htmx_redraw_only_the_chain_preview_and_button(member_client, credential):
    data = {**form_data("chat_gpt", credential), "chain_action": "add"}

    html = member_client.post(reverse("builder:new"), data, **HTMX).content.decode()

    assert html.lstrip().startswith('<div id="chain"')
    assert 'id="preview" class="preview" aria-labelledby="preview-title" hx-swap-oob="true"' in html
    assert 'id="submit-area"' not in html
    assert 'id="submit-reason" class="submit-reason" role="status" hidden hx-swap-oob="true"' in html
    assert re.search(r'<button type="submit" id="submit-button"[^>]* hx-swap-oob="true">', html)


# --- refresh models ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_refresh_models_fetches_the_catalog_from_the_stand_in(live_member_client, live_credential):
    ProviderModel.objects.all().delete()

    html = live_member_client.post(
        reverse("builder:models_refresh"), form_data("claude", live_credential), **HTMX
    ).content.decode()

    assert html.lstrip().startswith('<div id="model-picker"')
    assert "claude-sonnet-4-5 (reasoning, web search)" in html
    assert '<option value="claude-opus-4-1">claude-opus-4-1 (reasoning, web search, live only)' in html
    assert stats.request_count(function="models", provider="claude") == 1


def test_refresh_models_with_htmx_says_how_many_models_it_fetched(member_client, credential):
    from tasks.upstream.outcomes import ModelInfo

    listed = [ModelInfo(name, False, True, True) for name in ("gpt-4.1", "gpt-5-mini")]
    with mock.patch("tasks.upstream.clients.LLMResponsesClient.models", return_value=listed):
        html = member_client.post(
            reverse("builder:models_refresh"), form_data("chat_gpt", credential), **HTMX
        ).content.decode()

    assert '<p class="help" role="status">2 ChatGPT models fetched.</p>' in html
    assert 'id="models-refresh"' in html  # htmx gives the keyboard focus back to the redrawn button


def test_refresh_models_shows_the_upstream_error(member_client, credential):
    with mock.patch("tasks.builder.catalog.catalog_refresh", side_effect=UpstreamError("401 Unauthorized")):
        html = member_client.post(
            reverse("builder:models_refresh"), form_data("chat_gpt", credential), **HTMX
        ).content.decode()

    assert "Could not refresh the models: 401 Unauthorized" in html


def test_a_models_reply_that_lists_no_model_keeps_the_catalog_and_says_so(member_client, credential):
    make_catalog()
    with mock.patch("tasks.upstream.clients.LLMResponsesClient.models", return_value=[]):
        html = member_client.post(
            reverse("builder:models_refresh"), form_data("chat_gpt", credential), **HTMX
        ).content.decode()

    assert "Could not refresh the models: " in html
    assert '<option value="gpt-4.1-mini"' in html  # the models fetched before are still offered
    assert ProviderModel.objects.filter(provider="chat_gpt", is_listed=True).count() == 6


def test_model_names_the_catalog_cannot_hold_are_left_out_of_it(member_client, credential):
    from tasks.upstream.outcomes import ModelInfo

    listed = [ModelInfo(name, False, True, True) for name in ("x" * 101, " ", "gpt-4.1 ", "gpt-5-mini")]
    with mock.patch("tasks.upstream.clients.LLMResponsesClient.models", return_value=listed):
        html = member_client.post(
            reverse("builder:models_refresh"), form_data("chat_gpt", credential), **HTMX
        ).content.decode()

    assert '<option value="gpt-5-mini"' in html
    names = ProviderModel.objects.filter(provider="chat_gpt", is_listed=True).values_list(
        "model_name", flat=True
    )
    assert list(names) == ["gpt-5-mini"]


@pytest.mark.django_db(transaction=True)
def test_refresh_models_without_htmx_renders_the_page_with_a_message(live_member_client, live_credential):
    data = form_data("chat_gpt", live_credential, user_prompt="kept")

    response = live_member_client.post(reverse("builder:models_refresh"), data)

    html = response.content.decode()
    assert "ChatGPT models fetched" in html
    assert "kept</textarea>" in html


@pytest.mark.django_db(transaction=True)
def test_two_identical_submits_reach_the_stand_in_once(live_member_client, live_credential):
    make_catalog()
    data = form_data("claude", live_credential, idempotency_key="same-form")
    stats.clear()

    first = live_member_client.post(reverse("builder:new"), data)
    second = live_member_client.post(reverse("builder:new"), data)
    send_planned()

    assert stats.request_count(function="task_post", method="POST") == 1
    assert Task.objects.get().status == Task.Status.SUBMITTED
    assert first["Location"] == second["Location"] == f"/tasks/{Task.objects.get().pk}/"


def test_an_upstream_rejection_is_shown_on_the_task_page_and_the_builder_reopens_it_filled(
    member_client, credential
):
    from tasks.upstream.outcomes import StatusClass, TaskOutcome

    rejected = TaskOutcome(
        id="up-1", status_code=40501, status_message="Invalid Field: 'web_search'.", data={}, raw={},
        status_class=StatusClass.INVALID, cost=Decimal("0"), result=None,
    )  # fmt: skip
    data = form_data("chat_gpt", credential, user_prompt="Mine", idempotency_key="first-key")
    with mock.patch("tasks.upstream.clients.LLMResponsesClient") as client_class:
        client_class.for_credential.return_value.task_post.return_value = [rejected]
        response = member_client.post(reverse("builder:new"), data)
        send_planned()

    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{task.pk}/"
    page = member_client.get(response["Location"]).content.decode()
    assert "40501" in page
    assert "Invalid Field: &#x27;web_search&#x27;." in page
    reopened = member_client.get(reverse("builder:new") + f"?from_task={task.pk}").content.decode()
    assert "Mine</textarea>" in reopened
    assert 'name="idempotency_key" value="first-key"' not in reopened  # a corrected resubmission is new


# --- what a tag may contain ------------------------------------------------------------------------------

TAG_IS_ONE_LINE = "A tag is one line: no line breaks, tabs or other control characters."


@pytest.mark.parametrize(
    "tag", ["team-a\nq1", "team-a\r\nq1", "tab\tin", "bell\x07", "line\u2028sep", "c1\x85c1"]
)
def test_a_tag_with_a_control_character_is_refused_at_the_field(
    member_client, credential, accepted_post, tag
):
    data = form_data("chat_gpt", credential, tag=tag, user_prompt="Keep me")

    live = validate(member_client, data, "tag").content.decode()
    submitted = member_client.post(reverse("builder:new"), data)

    assert TAG_IS_ONE_LINE in errors_in(live, "tag")
    assert submitted.status_code == 422
    assert TAG_IS_ONE_LINE in errors_in(submitted.content.decode(), "tag")
    assert "Keep me</textarea>" in submitted.content.decode()
    assert not Task.objects.exists()
    assert accepted_post.call_count == 0


@pytest.mark.parametrize("tag", ["team-a:parks/fr", "50% off? #1", "naïve 東京 🎈", "..", "x" * 255])
def test_any_one_line_tag_is_accepted(member_client, credential, accepted_post, tag):
    response = member_client.post(reverse("builder:new"), form_data("chat_gpt", credential, tag=tag))

    assert response.status_code == 302
    assert Task.objects.get().tag == tag


OWN_TAG = "A tag starting with “aisa-dashboard:” is the product's own"


@pytest.mark.parametrize("tag", ["aisa-dashboard:0193f5a2-7c3e-7b1a-9d2e-4f5a6b7c8d9e", "aisa-dashboard:"])
def test_a_tag_of_the_products_own_form_is_refused_at_the_field(
    member_client, credential, accepted_post, tag
):
    """The product tags an untagged task "aisa-dashboard:<its id>" to find it upstream if its reply is lost;
    a person's task tagged so would be a second task under that name (or pose as another's)."""
    data = form_data("chat_gpt", credential, tag=tag, user_prompt="Keep me")

    live = validate(member_client, data, "tag").content.decode()
    submitted = member_client.post(reverse("builder:new"), data)

    assert OWN_TAG in errors_in(live, "tag").replace("&#x27;", "'")
    assert submitted.status_code == 422
    assert "Keep me</textarea>" in submitted.content.decode()
    assert not Task.objects.exists() and accepted_post.call_count == 0


def test_a_template_with_a_multi_line_tag_is_not_saved(member_client, credential):
    from tasks.models import PromptTemplate

    data = form_data("chat_gpt", credential, tag="a\nb", template_name="Tagged")

    response = member_client.post(reverse("prompt_templates:save"), {**data, "save_as": "new"})

    assert response.status_code == 422
    assert TAG_IS_ONE_LINE in errors_in(response.content.decode(), "tag")
    assert not PromptTemplate.objects.exists()


def test_a_batch_of_a_template_with_a_multi_line_tag_is_refused(member_user, credential):
    from tasks.prompt_templates import batches
    from tasks.prompt_templates.services import template_create

    # A template saved before tags were checked.
    template = template_create(
        name="Old", provider="chat_gpt", fields={"user_prompt": "Hi {{x}}", "tag": "a\nb"}, user=member_user
    )
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text="x\n1\n", models=["gpt-4.1"], credential=credential
    )

    assert not plan.ok
    assert any(TAG_IS_ONE_LINE in error for error in plan.errors)


def test_a_tag_budget_for_a_multi_line_tag_is_refused(team_admin_client):
    from tasks.models import Budget

    response = team_admin_client.post(
        reverse("spend:budget_create"),
        {"scope": "tag", "tag": "a\nb", "monthly_limit": "10", "warn_percent": "80", "is_active": "on"},
    )

    assert response.status_code != 302
    assert TAG_IS_ONE_LINE in response.content.decode()
    assert not Budget.objects.exists()


def test_without_javascript_a_provider_tab_posts_the_form_and_keeps_the_common_fields(
    member_client, credential
):
    data = form_data("chat_gpt", credential, user_prompt="Keep me", tag="my-tag", temperature="0.4")
    data["switch"] = "claude"

    response = member_client.post(reverse("builder:new"), data)

    html = response.content.decode()
    assert response.status_code == 200
    assert not Task.objects.exists()
    assert 'name="use_reasoning"' in html  # the Claude form
    assert ">\nKeep me</textarea>" in html
    assert 'value="my-tag"' in html
    assert 'value="gpt-4.1" selected' not in html  # not a Claude model


def test_the_forms_default_button_submits_the_task_never_adds_a_turn(member_client, credential):
    html = member_client.get(reverse("builder:new")).content.decode()

    # Enter presses the first submit button of the form in document order (HTML's implicit submission).
    buttons = re.findall(r"<button\b[^>]*>", html)
    first = next(
        b for b in buttons if 'type="submit"' in b and ('form="builder-form"' in b or "chain_action" in b)
    )
    assert 'class="default-submit"' in first and "name=" not in first
    assert 'data-enter-button="#submit-button"' in html


@pytest.mark.parametrize("provider", ["", "CHAT_GPT", "unknown"])
def test_a_bad_provider_is_named_in_the_reasons_submit_is_held(
    member_client, credential, accepted_post, provider
):
    """The provider is a hidden field with no label of its own: its error is listed under its name."""
    data = form_data("chat_gpt", credential, user_prompt="Keep this text")
    data["provider"] = provider

    response = member_client.post(reverse("builder:new"), data)

    html = response.content.decode()
    assert response.status_code == 422
    assert "<li>Provider: " in html and "None:" not in html
    assert "Keep this text</textarea>" in html
    assert Task.objects.count() == 0 and accepted_post.call_count == 0


# --- the template a task came from ----------------------------------------------------------------------


def _template_version(provider, user):
    from tasks.prompt_templates.services import template_create

    template = template_create(
        name=f"{provider} template", provider=provider, fields={"user_prompt": "Hi"}, user=user
    )
    return template.versions.get()


def test_a_task_records_its_own_providers_template_version_never_another_providers(
    member_client, member_user, credential, accepted_post
):
    claude_version = _template_version("claude", member_user)
    chat_gpt_version = _template_version("chat_gpt", member_user)

    member_client.post(
        reverse("builder:new"),
        form_data("claude", credential, template_version=chat_gpt_version.pk, idempotency_key="other"),
    )
    member_client.post(
        reverse("builder:new"),
        # The same request again: sent as "Send it again" sends it.
        form_data(
            "claude", credential, template_version=claude_version.pk, idempotency_key="own", send_again="1"
        ),
    )

    assert Task.objects.get(idempotency_key="other").template_version is None
    assert Task.objects.get(idempotency_key="own").template_version == claude_version
    assert accepted_post.call_count == 0  # only planned: nothing is sent


def test_the_page_shows_no_banner_for_another_providers_template(member_client, member_user, credential):
    chat_gpt_version = _template_version("chat_gpt", member_user)
    data = form_data("chat_gpt", credential, template_version=chat_gpt_version.pk, user_prompt="Kept")
    data["switch"] = "claude"  # a provider tab pressed without JavaScript carries the hidden field over

    html = member_client.post(reverse("builder:new"), data).content.decode()

    assert 'name="use_reasoning"' in html  # the Claude form
    assert "From template" not in html
    assert "Save as a new version" not in html


@pytest.mark.parametrize("value", ["²", "-1", "9" * 400, "12345"])
def test_a_template_version_id_of_no_version_never_breaks_the_page_or_lands_on_a_task(
    member_client, credential, accepted_post, value
):
    data = form_data("claude", credential, template_version=value)

    response = member_client.post(reverse("builder:new"), data)

    assert response.status_code in (302, 422)  # "²" is not a whole number: the form says so
    assert not Task.objects.filter(template_version__isnull=False).exists()


def test_another_providers_form_is_not_saved_as_a_version_of_the_template(
    member_client, member_user, credential
):
    chat_gpt_version = _template_version("chat_gpt", member_user)
    data = form_data("claude", credential, template_version=chat_gpt_version.pk)

    response = member_client.post(reverse("prompt_templates:save"), {**data, "save_as": "version"})

    assert response.status_code == 422
    assert chat_gpt_version.template.versions.count() == 1


@pytest.mark.parametrize("field", ["pingback_url", "postback_url"])
def test_a_callback_url_that_is_not_http_is_refused_at_its_field(member_client, credential, field):
    """ftp:// passed Django's URL check, and the upstream refused the paid task (40501) after it was sent."""
    html = validate(
        member_client, form_data("chat_gpt", credential, **{field: "ftp://example.com/done"}), field
    ).content.decode()

    assert "Enter an http:// or https:// address" in errors_in(html, field)
    assert re.search(r'<button type="submit" id="submit-button"[^>]*disabled', html)


def test_a_country_typed_in_lower_case_stays_chosen_when_switching_to_claude(member_client, credential):
    """ChatGPT's country box takes "fr" (sent as FR); Claude's list read it as no country of its own, showed
    "Any country" and held the submit back with "Not one of the countries this provider supports."."""
    query = "?switch=claude&user_prompt=Hi&web_search=on&web_search_country_iso_code=fr&web_search_city=Lyon"

    html = member_client.get(reverse("builder:new") + query, **HTMX).content.decode()

    assert '<option value="FR" selected>FR</option>' in html
    assert "Not one of the countries" not in html
    assert "&quot;web_search_country_iso_code&quot;: &quot;FR&quot;" in html  # the preview


def test_the_counters_leave_out_the_spaces_and_line_breaks_around_the_text_as_the_submit_does(
    member_client, credential
):
    """A pasted 500-character prompt ending in a line break read '501 / 500' in red, while the submit (which
    strips it) took it; a chain turn's counter the same."""
    query = {
        "provider": "chat_gpt", "user_prompt": "x" * 500 + "\n\n",
        "chain-0-role": "user", "chain-0-message": "  " + "y" * 20 + "\n",
    }  # fmt: skip

    html = member_client.get(reverse("builder:new"), query).content.decode()

    assert re.search(r'data-counter-for="id_user_prompt"[^>]*>500 / 500<', html)
    assert re.search(r'data-counter-for="id_chain-0-message"[^>]*>20 / 500<', html)


def test_refresh_models_on_a_credential_disabled_meanwhile_says_so(member_client, credential):
    """The picker still showed the credential, and the answer was 'Choose a credential first.'."""
    credential.is_active = False
    credential.save()

    html = member_client.post(
        reverse("builder:models_refresh"), form_data("chat_gpt", credential), **HTMX
    ).content.decode()

    assert f"{credential.name} is disabled: choose an active credential" in html
    assert "Choose a credential first." not in html
