"""Background jobs of visibility (django.tasks)."""

from django.tasks import task

from tasks.visibility.mentions import mentions_recompute
from tasks.visibility.rollup import visibility_rollup


@task
def recompute_mentions(brand_set_id: int) -> None:
    """Extract a brand set's mentions again (its brands or tags changed); safe to run twice."""
    mentions_recompute(brand_set_id=brand_set_id)
    visibility_rollup(brand_set_ids=[brand_set_id])
