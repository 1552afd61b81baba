"""A batch whose submission stopped before writing any of its tasks: the page says so and stops polling."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Batch

pytestmark = pytest.mark.django_db


def test_a_batch_none_of_whose_tasks_were_written_stops_polling_and_says_so(member_client, member_user):
    batch = Batch.objects.create(name="Nightly", created_by=member_user, task_count=3)
    Batch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    url = reverse("prompt_templates:batch_detail", args=[batch.pk])

    html = member_client.get(url, headers={"HX-Request": "true"}).content.decode()

    assert "3 of the batch's 3 tasks were never written" in html
    assert 'hx-trigger="every 3s"' not in html


def test_the_never_written_notice_links_to_the_templates_batch_form(member_client, member_user):
    from tasks.models import PromptTemplate, PromptTemplateVersion

    template = PromptTemplate.objects.create(name="Food", provider="chat_gpt")
    version = PromptTemplateVersion.objects.create(template=template, number=1, fields={"user_prompt": "Hi"})
    batch = Batch.objects.create(
        name="Nightly", created_by=member_user, task_count=3, template_version=version
    )
    Batch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(minutes=11))

    html = member_client.get(reverse("prompt_templates:batch_detail", args=[batch.pk])).content.decode()

    link = reverse("prompt_templates:batch_new", args=[template.pk])
    assert f'<a href="{link}">Check the rows again</a> to submit them.' in html
