"""Services for a task's local labels and note. Each change is kept as a TaskEvent ("edited") with who
and when, so a task's history shows how its labels and note came to be.
"""

from django.db import transaction

from tasks.models import Task, TaskEvent, TaskLabel

MAX_LABELS = 20


class LabelError(ValueError):
    """Labels that cannot be saved; the message is meant for the person."""


@transaction.atomic
def task_labels_set(*, task: Task, names: list[str], actor) -> tuple[list[str], list[str]]:
    """Make the task's labels exactly `names`; returns (added, removed) and records them if any changed."""
    wanted = []
    for name in names:
        name = " ".join(str(name).split())
        if name and name not in wanted:
            wanted.append(name)
    if any(len(name) > 60 for name in wanted):
        raise LabelError("A label is at most 60 characters.")
    if len(wanted) > MAX_LABELS:
        raise LabelError(f"A task has at most {MAX_LABELS} labels.")
    current = set(TaskLabel.objects.select_for_update().filter(task=task).values_list("name", flat=True))
    added = sorted(set(wanted) - current)
    removed = sorted(current - set(wanted))
    if removed:
        TaskLabel.objects.filter(task=task, name__in=removed).delete()
    TaskLabel.objects.bulk_create(
        [TaskLabel(task=task, name=name, created_by=actor) for name in added], ignore_conflicts=True
    )
    if added or removed:
        TaskEvent.objects.create(
            task=task,
            kind=TaskEvent.Kind.EDITED,
            actor=actor,
            message=_describe(added, removed),
            data={"added": added, "removed": removed},
        )
    return added, removed


def _describe(added: list[str], removed: list[str]) -> str:
    parts = []
    if added:
        parts.append("added label" + ("s " if len(added) > 1 else " ") + ", ".join(added))
    if removed:
        parts.append("removed label" + ("s " if len(removed) > 1 else " ") + ", ".join(removed))
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


@transaction.atomic
def task_note_set(*, task: Task, note: str, actor) -> bool:
    """Replace the task's note; returns True and records the change when it differs."""
    note = note.strip()
    before = Task.objects.select_for_update().values_list("note", flat=True).get(pk=task.pk)
    if before == note:
        return False
    Task.objects.filter(pk=task.pk).update(note=note)
    task.note = note
    TaskEvent.objects.create(
        task=task,
        kind=TaskEvent.Kind.EDITED,
        actor=actor,
        message="Cleared the note." if not note else "Changed the note.",
        data={"note": {"before": before, "after": note}},
    )
    return True
