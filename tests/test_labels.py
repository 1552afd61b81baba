"""Local labels and notes: several labels per task, every change kept with who and when."""

import pytest

from tasks.labels import LabelError, task_labels_set, task_note_set
from tasks.models import TaskEvent
from tests.factories import make_task

pytestmark = pytest.mark.django_db


def test_setting_labels_adds_and_removes_and_records_who(member_user):
    task = make_task(labels=["keep", "drop"])

    added, removed = task_labels_set(task=task, names=["keep", "new", " new ", "another"], actor=member_user)

    assert (added, removed) == (["another", "new"], ["drop"])
    assert sorted(task.labels.values_list("name", flat=True)) == ["another", "keep", "new"]
    event = TaskEvent.objects.filter(task=task, kind="edited").get()
    assert event.actor == member_user
    assert event.data == {"added": ["another", "new"], "removed": ["drop"]}
    assert event.created_at is not None


def test_setting_the_same_labels_records_nothing(member_user):
    task = make_task(labels=["a", "b"])

    assert task_labels_set(task=task, names=["b", "a"], actor=member_user) == ([], [])
    assert not TaskEvent.objects.filter(task=task, kind="edited").exists()


def test_labels_are_limited_in_length_and_number(member_user):
    task = make_task()

    with pytest.raises(LabelError):
        task_labels_set(task=task, names=["x" * 61], actor=member_user)
    with pytest.raises(LabelError):
        task_labels_set(task=task, names=[f"l{i}" for i in range(21)], actor=member_user)
    assert not task.labels.exists()


def test_note_changes_are_recorded_with_before_and_after(member_user):
    task = make_task(note="old")

    assert task_note_set(task=task, note="  new note ", actor=member_user)
    assert not task_note_set(task=task, note="new note", actor=member_user)

    task.refresh_from_db()
    assert task.note == "new note"
    event = TaskEvent.objects.get(task=task, kind="edited")
    assert event.data == {"note": {"before": "old", "after": "new note"}}
    assert event.actor == member_user
