"""The request log: what reached the stand-in's API, for tests to count.

    from sandbox import stats
    stats.post_count()                      # task_post POSTs received (any provider, any account)
    stats.request_count(function="task_get", provider="claude")
    stats.clear()

Over HTTP (from a process without database access): GET /sandbox/_requests/?function=task_post&method=POST.
"""

from django.db.models import QuerySet

from sandbox.models import SandboxRequest


def log_request(
    *,
    method: str,
    path: str,
    route: str,
    http_status: int,
    provider: str = "",
    function: str = "",
    account: str = "",
    tasks_in_body: int | None = None,
    fault: str = "",
) -> None:
    SandboxRequest.objects.create(
        method=method,
        path=path[:300],
        route=route,
        provider=provider,
        function=function,
        account=account or "",
        http_status=http_status,
        tasks_in_body=tasks_in_body,
        fault=fault,
    )


def requests(
    *,
    function: str | None = None,
    method: str | None = None,
    provider: str | None = None,
    route: str | None = None,
    http_status: int | None = None,
) -> QuerySet[SandboxRequest]:
    """Logged requests, newest first, filtered by whatever is given."""
    filters = {
        "function": function,
        "method": method.upper() if method else None,
        "provider": provider,
        "route": route,
        "http_status": http_status,
    }
    return SandboxRequest.objects.filter(**{k: v for k, v in filters.items() if v is not None})


def request_count(**filters) -> int:
    """How many logged requests match; takes the filters of `requests`."""
    return requests(**filters).count()


def post_count(function: str = "task_post", **filters) -> int:
    """How many POSTs reached `function` (task_post by default)."""
    return requests(function=function, method="POST", **filters).count()


def tasks_posted(function: str = "task_post", **filters) -> int:
    """How many tasks the POST bodies of `function` carried in total (accepted or not)."""
    return sum(r.tasks_in_body or 0 for r in requests(function=function, method="POST", **filters))


def clear() -> int:
    deleted, _ = SandboxRequest.objects.all().delete()
    return deleted
