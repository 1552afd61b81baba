"""End to end: an upstream that echoes the credential's key in its errors never gets it onto a page.

The upstream is `responses`; the product runs as it does for a person: submit, then the list, the task
page and the exports as a member.
"""

import json

import pytest
import responses
from django.urls import reverse

from tasks.models import AuditEntry, Credential, Task, TaskEvent
from tasks.submission import sending
from tests.submission.sending import submit_and_send

pytestmark = pytest.mark.django_db

AISA = "https://api.aisa.one/apis/v1/dataforseo"
POST_URL = f"{AISA}/ai_optimization/chat_gpt/llm_responses/task_post"
KEY = "sk-live-4f9c2a7e1b8d6f3a0c5e9b2d7a1f4c8e6b3d"  # 45 characters


def runs_of_the_key(text: str) -> list[str]:
    """Every run of 8 consecutive characters of KEY found in `text`."""
    return [KEY[i : i + 8] for i in range(len(KEY) - 7) if KEY[i : i + 8] in text]


@pytest.fixture
def credential(db):
    credential = Credential(name="Echoing gateway", kind=Credential.Kind.AISA, base_url=AISA, is_default=True)
    credential.set_secret(KEY)
    credential.save()
    return credential


def submit(credential, user, prompt: str) -> Task:
    spec = sending.TaskSpec(provider="chat_gpt", body={"user_prompt": prompt, "model_name": "gpt-4.1-mini"})
    (task,) = submit_and_send(specs=[spec], credential=credential, user=user)
    return task


def page_texts(client, task: Task) -> dict[str, str]:
    def body(response):
        assert response.status_code == 200
        if response.streaming:
            return b"".join(response.streaming_content).decode()
        return response.content.decode()

    return {
        "list": body(client.get(reverse("history:task_list"))),
        "task page": body(client.get(reverse("history:task_detail", args=[task.pk]))),
        "csv": body(client.get(reverse("history:task_export", args=["csv"]))),
        "json": body(client.get(reverse("history:task_export", args=["json"]))),
    }


@pytest.mark.parametrize("start", [259, 270, 290])
def test_a_key_echoed_in_a_rejection_reaches_no_status_event_page_or_export(
    credential, member_user, client, start
):
    with responses.RequestsMock() as upstream:
        upstream.post(
            POST_URL,
            status=401,
            json={"error": {"type": "authentication_error", "message": "k" * start + f" {KEY} is invalid"}},
        )
        task = submit(credential, member_user, "Where does the key go?")

    assert task.status == Task.Status.FAILED
    assert "rejected the request" in task.status_message
    texts = {"status": task.status_message}
    texts |= {f"event {e.kind}": e.message for e in TaskEvent.objects.filter(task=task)}
    client.force_login(member_user)
    texts |= page_texts(client, task)
    assert {name: runs_of_the_key(text) for name, text in texts.items()} == {name: [] for name in texts}


def test_a_key_echoed_in_a_refused_tasks_message_reaches_no_page_or_export(credential, member_user, client):
    refused = {
        "id": "07171205-1535-0612-0000-77aa12bb34cc",
        "status_code": 40501,
        "status_message": f"Invalid Field: 'api_key' ({KEY}).",
        "cost": 0,
        "result": None,
    }
    with responses.RequestsMock() as upstream:
        upstream.post(POST_URL, body=json.dumps({"status_code": 20000, "tasks": [refused]}))
        task = submit(credential, member_user, "And here?")

    assert task.status == Task.Status.FAILED
    assert task.status_message == "Invalid Field: 'api_key' ([redacted])."
    client.force_login(member_user)
    texts = page_texts(client, task)
    assert {name: runs_of_the_key(text) for name, text in texts.items()} == {name: [] for name in texts}


def test_a_key_echoed_when_verifying_reaches_neither_the_credentials_page_nor_the_audit_log(
    credential, team_admin_client
):
    message = "v" * 265 + f" {KEY} is not a valid key"
    with responses.RequestsMock() as upstream:
        upstream.get(
            f"{AISA}/ai_optimization/chat_gpt/llm_responses/models",
            status=401,
            json={"error": {"type": "authentication_error", "message": message}},
        )
        response = team_admin_client.post(
            reverse("team:credential_verify", args=[credential.pk]), follow=True
        )

    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.last_verification_ok is False
    texts = {
        "verification": credential.last_verification_message,
        "page after verifying": response.content.decode(),
        "credentials page": team_admin_client.get(reverse("team:credential_list")).content.decode(),
        "audit log": team_admin_client.get(reverse("team:audit_log")).content.decode(),
        "audit entries": str(list(AuditEntry.objects.values_list("changes", flat=True))),
    }
    assert {name: runs_of_the_key(text) for name, text in texts.items()} == {name: [] for name in texts}
