"""The Credentials page: add, verify, set default, replace the secret, disable; secrets never shown again."""

import re
import threading

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import AuditEntry, Credential
from tasks.upstream import clients
from tasks.upstream.outcomes import ModelInfo, UpstreamError, UpstreamRejected, UpstreamUnavailable
from tests.concurrency import run_concurrently
from tests.factories import make_credential

pytestmark = pytest.mark.django_db

SECRET = "aisa-live-0123456789abcdefWXYZ"
NEW_SECRET = "aisa-live-fedcba9876543210QRST"
DATAFORSEO_SECRET = "dataforseo-api-password-5678"


@pytest.fixture
def accepting(monkeypatch):
    """The upstream accepts every secret it is shown (its free models list answers)."""
    monkeypatch.setattr(clients, "LLMResponsesClient", _Upstream)
    monkeypatch.setattr(_Upstream, "fail", False)
    monkeypatch.setattr(_Upstream, "seen", [])
    return _Upstream


def _add(client, **overrides):
    data = {
        "name": "Main AIsa key",
        "kind": "aisa",
        "secret": SECRET,
        "base_url": "",
        "login": "",
        "price_multiplier": "1",
        **overrides,
    }
    return client.post(reverse("team:credential_add"), data)


def test_adding_a_credential_stores_it_encrypted_and_shows_only_its_last_four(team_admin_client, accepting):
    response = _add(team_admin_client)

    assert response.status_code == 302
    credential = Credential.objects.get()
    assert credential.get_secret() == SECRET
    assert SECRET not in credential.secret_encrypted
    assert credential.is_default  # the first credential becomes the default
    page = team_admin_client.get(response["Location"]).content.decode()
    assert "…WXYZ" in page
    assert SECRET not in page


def test_a_rejected_form_keeps_the_input_but_never_echoes_the_secret(team_admin_client):
    make_credential("Main AIsa key")

    response = _add(team_admin_client, kind="dataforseo", base_url="not a url")

    html = response.content.decode()
    assert response.status_code == 200
    assert "A credential with this name exists" in html
    assert "DataForSEO direct needs the API login" in html
    assert "Enter a valid URL" in html
    assert 'value="not a url"' in html
    assert SECRET not in html
    assert Credential.objects.count() == 1


def test_set_default_moves_the_default_and_disable_clears_it(team_admin_client):
    first = make_credential("First", is_default=True)
    second = make_credential("Second")

    team_admin_client.post(reverse("team:credential_default", args=[second.pk]))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)

    team_admin_client.post(reverse("team:credential_disable", args=[second.pk]))
    second.refresh_from_db()
    assert (second.is_active, second.is_default) == (False, False)

    response = team_admin_client.post(reverse("team:credential_default", args=[second.pk]), follow=True)
    assert "cannot be the default" in response.content.decode()
    second.refresh_from_db()
    assert not second.is_default

    team_admin_client.post(reverse("team:credential_disable", args=[second.pk]), {"enable": "1"})
    second.refresh_from_db()
    assert second.is_active
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["credential.set_default", "credential.disable", "credential.enable"]


def test_disabling_or_enabling_twice_records_one_change(team_admin_client):
    """A second click, or a second admin on a page loaded before the first acted, changes nothing: the
    audit log must not record “is_active True → False” for a credential that was already disabled."""
    credential = make_credential("Second")
    url = reverse("team:credential_disable", args=[credential.pk])

    team_admin_client.post(url)
    response = team_admin_client.post(url, follow=True)
    assert "already disabled" in response.content.decode()
    team_admin_client.post(url, {"enable": "1"})
    response = team_admin_client.post(url, {"enable": "1"}, follow=True)
    assert "already enabled" in response.content.decode()

    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["credential.disable", "credential.enable"]
    credential.refresh_from_db()
    assert credential.is_active


def test_making_the_default_the_default_again_records_nothing(team_admin_client):
    first = make_credential("First", is_default=True)
    second = make_credential("Second")
    url = reverse("team:credential_default", args=[second.pk])

    team_admin_client.post(url)
    response = team_admin_client.post(url, follow=True)

    assert "already the default" in response.content.decode()
    entries = list(AuditEntry.objects.order_by("id").values_list("action", "changes"))
    assert entries == [
        (
            "credential.set_default",
            {"is_default": {"from": False, "to": True}, "previous_default": [first.name]},
        )
    ]


def test_replacing_the_secret_records_both_fingerprints_and_clears_the_verification(team_admin_client):
    credential = make_credential("Direct", kind="dataforseo", login="old@example.com", secret=SECRET)
    Credential.objects.filter(pk=credential.pk).update(last_verification_ok=True)
    old_fingerprint = credential.secret_fingerprint

    response = team_admin_client.post(
        reverse("team:credential_edit", args=[credential.pk]),
        {"form": "secret", "login": "new@example.com", "secret": NEW_SECRET, "save_unverified": "on"},
        follow=True,
    )

    credential.refresh_from_db()
    assert credential.get_secret() == NEW_SECRET
    assert credential.login == "new@example.com"
    assert credential.last_verification_ok is None
    assert "now ends in …QRST" in response.content.decode()
    entry = AuditEntry.objects.get(action="credential.replace_secret")
    assert entry.changes["secret_fingerprint"] == {
        "from": old_fingerprint,
        "to": credential.secret_fingerprint,
    }
    assert entry.changes["login"] == {"from": "old@example.com", "to": "new@example.com"}


def test_the_edit_page_never_renders_the_secret(team_admin_client):
    credential = make_credential("Direct", kind="dataforseo", login="me@example.com", secret=SECRET)

    html = team_admin_client.get(reverse("team:credential_edit", args=[credential.pk])).content.decode()
    rejected = team_admin_client.post(
        reverse("team:credential_edit", args=[credential.pk]),
        {"form": "secret", "login": "", "secret": NEW_SECRET},
    )

    assert SECRET not in html and "…WXYZ" in html
    assert rejected.status_code == 200
    assert NEW_SECRET not in rejected.content.decode()
    credential.refresh_from_db()
    assert credential.get_secret() == SECRET


def test_settings_can_change_without_touching_the_secret(team_admin_client):
    credential = make_credential("Old name", secret=SECRET)

    team_admin_client.post(
        reverse("team:credential_edit", args=[credential.pk]),
        {
            "form": "settings",
            "name": "New name",
            "base_url": "http://127.0.0.1:8000/sandbox",
            "price_multiplier": "2",
        },
    )

    credential.refresh_from_db()
    assert (credential.name, str(credential.price_multiplier)) == ("New name", "2.000")
    assert credential.get_secret() == SECRET
    entry = AuditEntry.objects.get(action="credential.update")
    assert entry.changes["name"] == {"from": "Old name", "to": "New name"}


class _Upstream:
    fail = False
    seen: list = []  # (kind, login, secret hint, base URL) of each credential asked about

    @classmethod
    def for_credential(cls, credential, **kwargs):
        cls.seen.append(
            (credential.kind, credential.login, credential.secret_hint, credential.effective_base_url)
        )
        return cls()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def models(self, provider):
        if isinstance(self.fail, Exception):
            raise self.fail
        if self.fail:
            raise UpstreamError("AIsa answered 401: invalid API key")
        return [ModelInfo("gpt-4.1-mini", False, True, True), ModelInfo("o3", True, True, True)]


@pytest.mark.parametrize(
    ("fail", "expected"), [(False, "listed 2 ChatGPT models"), (True, "invalid API key")]
)
def test_verify_calls_the_free_models_endpoint_and_records_time_and_outcome(
    team_admin_client, monkeypatch, fail, expected
):
    monkeypatch.setattr(clients, "LLMResponsesClient", _Upstream)
    monkeypatch.setattr(_Upstream, "fail", fail)
    credential = make_credential("Main", secret=SECRET)

    response = team_admin_client.post(
        reverse("team:credential_verify", args=[credential.pk]), headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="credential-{credential.pk}"')
    assert expected in html
    credential.refresh_from_db()
    assert credential.last_verified_at is not None
    assert credential.last_verification_ok is (not fail)
    entry = AuditEntry.objects.get(action="credential.verify")
    assert entry.changes["ok"] is (not fail)


def test_verify_without_javascript_redirects_back_with_a_message(team_admin_client, monkeypatch):
    monkeypatch.setattr(clients, "LLMResponsesClient", _Upstream)
    credential = make_credential("Main", secret=SECRET)

    response = team_admin_client.post(reverse("team:credential_verify", args=[credential.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("team:credential_list")
    assert "listed 2 ChatGPT models" in response.content.decode()


def test_unknown_credentials_are_404_not_500(team_admin_client):
    assert team_admin_client.get(reverse("team:credential_edit", args=[999999])).status_code == 404
    assert team_admin_client.post(reverse("team:credential_verify", args=[999999])).status_code == 404


@pytest.mark.parametrize("secret", ["nope", "nope1234"])
def test_a_secret_of_8_characters_or_fewer_is_never_shown_even_in_part(
    team_admin_client, admin_client, accepting, secret
):
    response = _add(team_admin_client, secret=secret)
    assert response.status_code == 302
    credential = Credential.objects.get()
    ending = secret[-4:]

    assert credential.secret_hint == ""
    assert ending not in str(credential)
    pages = [
        team_admin_client.get(response["Location"], follow=True),  # the list, with the saved message
        team_admin_client.get(reverse("team:credential_edit", args=[credential.pk])),
        team_admin_client.get(reverse("team:audit_log")),
        admin_client.get(reverse("admin:tasks_credential_changelist")),
        admin_client.get(reverse("admin:tasks_credential_change", args=[credential.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assert f"…{ending}" not in page.content.decode()
    entry = AuditEntry.objects.get(action="credential.create")
    assert entry.changes["secret_hint"] == ""
    assert ending not in entry.object_repr


def test_a_secret_of_9_characters_shows_its_last_four():
    credential = make_credential(secret="abcde6789")
    assert credential.secret_hint == "6789"
    assert str(credential).endswith("…6789)")


# --- verified on save ---------------------------------------------------------------------------------

REFUSED = UpstreamRejected(
    "AIsa rejected the request (HTTP 401 authentication_error): Invalid API key. Check the credential.",
    http_status=401,
)
DOWN = UpstreamUnavailable("Could not reach AIsa at api.aisa.one: connection refused. Nothing was sent.")


def test_a_new_credential_is_checked_with_the_upstream_before_it_is_saved(team_admin_client, accepting):
    response = _add(
        team_admin_client, kind="dataforseo", login="me@example.com", base_url="https://dfs.test/v3"
    )

    assert response.status_code == 302
    assert accepting.seen == [("dataforseo", "me@example.com", "WXYZ", "https://dfs.test/v3")]
    credential = Credential.objects.get()
    assert credential.last_verification_ok is True and credential.last_verified_at is not None
    assert credential.last_verification_message == "OK: the models endpoint listed 2 ChatGPT models."
    assert AuditEntry.objects.get(action="credential.create").changes["verified"] is True


def test_a_secret_the_upstream_refuses_is_not_saved_and_its_message_shown(team_admin_client, accepting):
    accepting.fail = REFUSED

    response = _add(team_admin_client)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Not saved: the upstream did not accept it." in html
    assert "Invalid API key. Check the credential." in html
    assert 'value="Main AIsa key"' in html  # the rest of the input is kept
    assert SECRET not in html
    assert "Save without verifying" not in html  # the upstream answered: nothing to skip
    assert not Credential.objects.exists()


def test_when_the_upstream_is_down_it_may_be_saved_without_verifying(team_admin_client, accepting):
    accepting.fail = DOWN

    refused = _add(team_admin_client)

    html = refused.content.decode()
    assert "Not saved: the secret could not be checked. Could not reach AIsa" in html
    assert re.search(r'<input type="checkbox" name="save_unverified"[^>]*>', html)
    assert SECRET not in html
    assert not Credential.objects.exists()

    saved = _add(team_admin_client, save_unverified="on")

    credential = Credential.objects.get()
    assert credential.get_secret() == SECRET
    assert credential.last_verified_at is None and credential.last_verification_ok is None
    assert "saved without verifying" in team_admin_client.get(saved["Location"]).content.decode()
    assert len(accepting.seen) == 1  # the second save asked nothing


def test_a_replaced_secret_is_checked_first_and_a_refused_one_keeps_the_old(team_admin_client, accepting):
    credential = make_credential("Main", secret=SECRET)
    url = reverse("team:credential_edit", args=[credential.pk])
    accepting.fail = REFUSED

    refused = team_admin_client.post(url, {"form": "secret", "secret": NEW_SECRET})

    assert "Invalid API key" in refused.content.decode() and NEW_SECRET not in refused.content.decode()
    credential.refresh_from_db()
    assert credential.get_secret() == SECRET

    accepting.fail = False
    team_admin_client.post(url, {"form": "secret", "secret": NEW_SECRET})

    credential.refresh_from_db()
    assert credential.get_secret() == NEW_SECRET
    assert credential.last_verification_ok is True


def test_the_verification_message_is_one_line_with_the_detail_folded(team_admin_client, accepting):
    long_message = "AIsa rejected the request (HTTP 401 authentication_error): " + "detail " * 40
    accepting.fail = UpstreamRejected(long_message, http_status=401)
    credential = make_credential("Main", secret=SECRET)
    team_admin_client.post(reverse("team:credential_verify", args=[credential.pk]))

    html = team_admin_client.get(reverse("team:credential_list")).content.decode()

    cell = re.search(r'<details class="verification">.*?</details>', html, re.S).group(0)
    summary = re.search(r"<summary>(.*?)</summary>", cell, re.S).group(1)
    assert "Failed" in summary and "detail" not in summary
    assert long_message.strip() in cell  # whole, behind the summary


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"secret": "Bearer aisa-live-0123456789"}, "secret", "An AIsa key is one word"),
        ({"secret": "aisa-live-01234\u200b56789"}, "secret", "An AIsa key is one word"),
        # A secret no CSRF token or CSP nonce of the page can hold by chance ("pw" was in 1 page of 15).
        (
            {"kind": "dataforseo", "login": "me:you", "secret": DATAFORSEO_SECRET},
            "login",
            "cannot contain “:”",
        ),
        ({"base_url": "https://api.example.com/v3?key=1"}, "base_url", "no login, password, query"),
        ({"base_url": "https://me:pw@api.example.com/v3"}, "base_url", "no login, password, query"),
        ({"base_url": "ftp://api.example.com/v3"}, "base_url", "an http:// or https:// URL"),
    ],
)
@pytest.mark.parametrize("unverified", [False, True], ids=["checked", "unverified"])
def test_a_secret_login_or_url_the_client_cannot_use_is_refused_at_its_field(
    team_admin_client, overrides, field, message, unverified
):
    """Not a server error (nor, saved without verifying, a credential that can never send)."""
    extra = {"save_unverified": "on"} if unverified else {}

    response = _add(team_admin_client, **overrides, **extra)

    assert response.status_code == 200
    assert message in str(response.context["form"].errors[field])
    assert not Credential.objects.exists()
    assert overrides.get("secret", SECRET) not in response.content.decode()


def test_a_replaced_secret_or_a_changed_url_the_client_cannot_use_is_refused(team_admin_client):
    credential = make_credential("Main", secret=SECRET)
    url = reverse("team:credential_edit", args=[credential.pk])

    secret = team_admin_client.post(url, {"form": "secret", "secret": "two words", "save_unverified": "on"})
    settings = team_admin_client.post(
        url,
        {"form": "settings", "name": "Main", "base_url": "https://u:p@h.example/v3", "price_multiplier": "1"},
    )

    assert "An AIsa key is one word" in str(secret.context["secret_form"].errors["secret"])
    assert "no login, password, query" in str(settings.context["settings_form"].errors["base_url"])
    credential.refresh_from_db()
    assert (credential.get_secret(), credential.base_url) == (SECRET, "")


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_verifying_a_stored_credential_the_client_cannot_use_says_why(team_admin_client, htmx):
    """One stored before the form checked logins (or by generate_tasks, which gives none): Verify records
    a failure with the reason, not a server error."""
    credential = make_credential("Old direct", kind="dataforseo", login="me:you", secret="pw")
    headers = {"HX-Request": "true"} if htmx else {}

    response = team_admin_client.post(
        reverse("team:credential_verify", args=[credential.pk]), headers=headers, follow=not htmx
    )

    assert response.status_code == 200
    assert "cannot contain" in response.content.decode()
    credential.refresh_from_db()
    assert credential.last_verification_ok is False


def test_the_balance_of_a_stored_credential_the_client_cannot_use_says_why(team_admin_client):
    make_credential("Old direct", kind="dataforseo", login="me:you", secret="pw")

    html = team_admin_client.get(reverse("spend:balance")).content.decode()

    assert "cannot contain" in html
    assert "holds no balance" not in html


def test_two_presses_of_save_add_one_credential_and_no_server_error(
    transactional_db, team_admin, accepting, monkeypatch
):
    """Save pressed twice (no script to stop the second press, or two Admins): both requests pass the name
    check while the upstream looks at the secret; the second is told the name is taken."""
    both_checking = threading.Barrier(2)
    listed = accepting.models

    def models(self, provider):
        both_checking.wait(timeout=10)
        return listed(self, provider)

    monkeypatch.setattr(accepting, "models", models)

    def press(i):
        client = Client()
        client.force_login(team_admin)
        return _add(client)

    responses = run_concurrently(press, 2)

    assert sorted((getattr(r, "status_code", r) for r in responses), key=str) == [200, 302]
    refused = next(r for r in responses if r.status_code == 200)
    assert "A credential with this name exists." in refused.content.decode()
    assert Credential.objects.count() == 1
