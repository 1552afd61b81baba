"""Answer changes that matter: between two runs of the same prompt and model under a tag, a brand
appeared, disappeared or moved, or a brand's domain started or stopped being cited."""

from collections import defaultdict
from dataclasses import dataclass, field

from tasks.models import BrandMention, BrandSet
from tasks.visibility.selectors import visibility_url_for_tag

RECENT_ANSWERS = 300


@dataclass
class RunChange:
    task_id: object
    created_at: object
    prompt: str
    model_name: str
    notes: list[str] = field(default_factory=list)


def answer_changes(
    *, brand_set: BrandSet, tag: str, limit: int = RECENT_ANSWERS, shown: int | None = None
) -> list[RunChange]:
    """The tag's latest runs (newest first) that changed what they say about the set's brands, among its
    newest `limit` answers; only the newest `shown` of them when given (the rest are not compared)."""
    newest = BrandMention.objects.filter(brand_set=brand_set, tag=tag, brand__isnull=True).order_by(
        "-created_at"
    )
    answers = list(newest.values_list("task_id", "created_at", "task__user_prompt", "model_name")[:limit])
    if not answers:
        return []
    names = dict(brand_set.brands.values_list("pk", "name"))
    found = defaultdict(dict)  # task -> brand -> (position, cited)
    # The same answers as a subquery: 300 ids are not sent back as parameters.
    brand_rows = BrandMention.objects.filter(
        brand_set=brand_set, task_id__in=newest.values("task_id")[:limit], brand__isnull=False
    ).values_list("task_id", "brand_id", "position", "citation_count")
    for task_id, brand_id, position, cited in brand_rows:
        found[task_id][brand_id] = (position, cited > 0)
    # Each answer is compared with the run before it of the same prompt and model.
    before: dict[int, object] = {}  # answer's index -> the task of the run before it
    last: dict[tuple, object] = {}
    for index in range(len(answers) - 1, -1, -1):  # oldest first
        task_id, _, prompt, model_name = answers[index]
        if (prompt, model_name) in last:
            before[index] = last[prompt, model_name]
        last[prompt, model_name] = task_id
    changes = []
    for index, (task_id, created_at, prompt, model_name) in enumerate(answers):
        if index in before:
            notes = _notes(found.get(before[index], {}), found.get(task_id, {}), names)
            if notes:
                changes.append(RunChange(task_id, created_at, prompt, model_name, notes))
                if len(changes) == shown:
                    break
    return changes


def _notes(before: dict, now: dict, names: dict) -> list[str]:
    notes = []
    for brand_id, name in names.items():
        old_pos, old_cited = before.get(brand_id, (None, False))
        new_pos, new_cited = now.get(brand_id, (None, False))
        if old_pos is None and new_pos is not None:
            notes.append(f"{name} appeared (#{new_pos})")
        elif old_pos is not None and new_pos is None:
            notes.append(f"{name} disappeared (was #{old_pos})")
        elif old_pos != new_pos:
            notes.append(f"{name} moved #{old_pos} → #{new_pos}")
        if new_cited and not old_cited:
            notes.append(f"{name}'s domain started being cited")
        elif old_cited and not new_cited:
            notes.append(f"{name}'s domain stopped being cited")
    return notes


@dataclass
class TagChanges:
    """What one brand set reading a tag saw change lately, and where its visibility page is."""

    brand_set: BrandSet
    changes: list[RunChange]
    url: str


def tag_changes(*, tag: str, page_url: str = "", shown: int = 5) -> list[TagChanges]:
    """For the tag's history page and a monitor's page: per brand set reading `tag`, its latest changes
    that matter and the link to the visibility page (`page_url`: the tag's unless given)."""
    url = page_url or visibility_url_for_tag(tag)
    joiner = "&" if "?" in url else "?"
    return [
        TagChanges(
            brand_set=brand_set,
            changes=answer_changes(brand_set=brand_set, tag=tag, shown=shown),
            url=f"{url}{joiner}set={brand_set.pk}",
        )
        for brand_set in BrandSet.objects.filter(tag_links__tag=tag).distinct().order_by("name")
    ]
