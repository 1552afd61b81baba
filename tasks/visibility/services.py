"""Writes of visibility: brand sets, their brands and tags. Each change has the set's answers read
again in the background (the `recompute_mentions` job, tasks/visibility/mentions.py)."""

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from tasks.models import Brand, BrandSet, BrandSetTag
from tasks.visibility.jobs import recompute_mentions


class NameTaken(Exception):
    """Another set (or another brand of the set) took the name between the form's check and the save."""


def _enqueue_recompute(brand_set_id: int) -> None:
    transaction.on_commit(lambda: recompute_mentions.enqueue(brand_set_id))


def brand_set_save(
    *, actor, brand_set: BrandSet | None, name: str, description: str, tags: list[str]
) -> BrandSet:
    """Create or change a set and the tags it reads; its mentions are recomputed in the background.
    Raises NameTaken when another set has the name."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                if brand_set is None:
                    brand_set = BrandSet.objects.create(name=name, description=description, created_by=actor)
                else:
                    brand_set.name, brand_set.description = name, description
                    brand_set.save(update_fields=["name", "description", "updated_at"])
        except IntegrityError:
            raise NameTaken("Another brand set has this name.") from None
        current = set(brand_set.tag_links.values_list("tag", flat=True))
        wanted = set(tags)
        BrandSetTag.objects.filter(brand_set=brand_set, tag__in=current - wanted).delete()
        BrandSetTag.objects.bulk_create(  # a link another tab added since `current` was read is kept
            [BrandSetTag(brand_set=brand_set, tag=tag) for tag in sorted(wanted - current)],
            ignore_conflicts=True,
        )
        if current != wanted:
            _enqueue_recompute(brand_set.pk)
    return brand_set


def brand_set_attach_tag(*, brand_set: BrandSet, tag: str) -> bool:
    """Have the set read `tag` too (a monitor's tag: its runs' answers); False if it did already."""
    with transaction.atomic():
        _link, created = BrandSetTag.objects.get_or_create(brand_set=brand_set, tag=tag)
        if created:
            BrandSet.objects.filter(pk=brand_set.pk).update(updated_at=timezone.now())
            _enqueue_recompute(brand_set.pk)
    return created


def brand_set_delete(*, brand_set: BrandSet) -> None:
    brand_set.delete()


def brand_save(
    *, brand_set: BrandSet, brand: Brand | None, name: str, is_ours: bool, aliases: str, domains: str
) -> Brand:
    with transaction.atomic():
        if brand is None:
            brand = Brand(brand_set=brand_set)
        brand.name, brand.is_ours, brand.aliases, brand.domains = name, is_ours, aliases, domains
        try:
            with transaction.atomic():
                brand.save()
        except IntegrityError:
            raise NameTaken("This set already has a brand with this name.") from None
        BrandSet.objects.filter(pk=brand_set.pk).update(updated_at=timezone.now())
        _enqueue_recompute(brand_set.pk)
    return brand


def brand_delete(*, brand: Brand) -> None:
    with transaction.atomic():
        set_id = brand.brand_set_id
        brand.delete()
        _enqueue_recompute(set_id)


def brand_sets_for_tag(tag: str):
    return BrandSet.objects.filter(Q(tag_links__tag=tag)).distinct().order_by("name")
