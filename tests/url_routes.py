"""Every URL of the project, from the URLconf, with its path parameters filled from factory-made objects.

Shared by the tests that walk the whole product: the permission matrix (test_permissions.py) and the
hostile-query crawl (test_hostile_queries.py). A new URL is in both without touching them; a new kind of
path parameter asks for a sample value in `url_for`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tasks.models import AlertDestination, Brand, BrandSet, BrandSetTag, Budget, Monitor, MonitorRun
from tasks.submission.callbacks import callback_token
from tests.factories import make_batch, make_credential, make_task, make_template_version, make_user

SKIPPED_NAMESPACES = {"admin"}  # the Django admin: its own login and staff rules (test_admin.py)
SKIPPED_PREFIXES = ("sandbox/",)  # the stand-in upstream: its own authentication, like the real API


@dataclass(frozen=True)
class Route:
    name: str
    route: str
    params: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


def project_routes(patterns=None, prefix: str = "", namespace: str | None = None) -> list[Route]:
    routes = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace or namespace
            if ns in SKIPPED_NAMESPACES:
                continue
            routes += project_routes(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            if route.startswith(SKIPPED_PREFIXES):
                continue
            assert pattern.name, f"Every product URL needs a name (for the tests that walk them): {route}"
            params = tuple(pattern.pattern.converters) if hasattr(pattern.pattern, "converters") else ()
            routes.append(Route(f"{namespace}:{pattern.name}" if namespace else pattern.name, route, params))
    return routes


def make_url_objects() -> dict:
    """One of everything a URL can point at, so views get past their lookups."""
    credential = make_credential("Matrix credential")
    version = make_template_version("Matrix template")
    batch = make_batch(name="Matrix batch")
    task = make_task(credential=credential, tag="team-a", template_version=version, batch=batch)
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=10)
    person = make_user("matrix-person")
    brand_set = BrandSet.objects.create(name="Matrix brands")
    brand = Brand.objects.create(brand_set=brand_set, name="Acme")
    BrandSetTag.objects.create(brand_set=brand_set, tag="team-a")
    monitor = Monitor.objects.create(
        name="Matrix monitor", slug="matrix-monitor", tag="matrix-monitor", targets=[]
    )
    run = MonitorRun.objects.create(
        monitor=monitor, slot=datetime(2026, 1, 1, tzinfo=UTC), state=MonitorRun.State.FAILED
    )
    destination = AlertDestination.objects.create(
        kind=AlertDestination.Kind.EMAIL, monitor=monitor, emails="ops@example.com"
    )
    return {
        "brand_set": brand_set,
        "brand": brand,
        "credential": credential,
        "template": version.template,
        "version": version,
        "batch": batch,
        "task": task,
        "budget": budget,
        "person": person,
        "monitor": monitor,
        "run": run,
        "destination": destination,
    }


def url_for(route: Route, objects: dict) -> str:
    return reverse(route.name, kwargs=url_kwargs(route, objects))


def url_kwargs(route: Route, objects: dict) -> dict:
    """The route's path parameters, each from the object of its kind in `objects`."""
    values = {
        "task_id": objects["task"].pk,
        "batch_id": objects["batch"].pk,
        "template_id": objects["template"].pk,
        "version_id": objects["version"].pk,
        "tag": "team-a",
        "fmt": "csv",
        "token": callback_token(objects["task"].pk),
        "uidb64": "MQ",
        "token_reset": "set-password",
        "set_id": objects["brand_set"].pk,
        "brand_id": objects["brand"].pk,
        "slug": objects["monitor"].slug,
        "destination_id": objects["destination"].pk,
        "run_id": objects["run"].pk,
    }
    kwargs = {}
    for param in route.params:
        if param == "pk":
            kind = route.name.rpartition(":")[2].split("_")[0]
            kwargs[param] = {"budget": objects["budget"], "credential": objects["credential"]}.get(
                kind, objects["person"]
            ).pk
        else:
            assert param in values, f"Add a sample value for <{param}> in {route.route} here"
            kwargs[param] = values[param]
    return kwargs
