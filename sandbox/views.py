"""HTTP around the stand-in: routes, authentication, fault injection and the request log.

Two route styles reach the same functions: AIsa's (/apis/v1/dataforseo/..., Bearer key) and DataForSEO's
(/v3/..., HTTP Basic). Callers are programs, not people: every view is exempt from the login requirement,
and the POST ones from CSRF.
"""

import json
import logging
import socket
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import auth, envelope, faults, services, stats
from sandbox.catalog import LIVE_ONLY_PROVIDERS
from sandbox.live import MAX_CONCURRENT_LIVE, live_delay, live_slot

logger = logging.getLogger(__name__)

POST_FUNCTIONS = frozenset({"task_post", "live"})


# --- Response helpers ---------------------------------------------------------------------------------------


def _envelope_error(status_code: int, message: str, *, started: float, http_status: int) -> JsonResponse:
    """DataForSEO's answer outside a task: an envelope with `tasks: null`."""
    body = envelope.envelope(None, started=started, status_code=status_code, message=message, cost=0)
    return JsonResponse(body, status=http_status)


def _unauthorized(route: str, started: float) -> JsonResponse:
    if route == auth.AISA:
        body = envelope.aisa_error("authentication_error", "invalid_api_key", "Invalid or missing API key.")
        return JsonResponse(body, status=401)
    message = (
        "You are not authorized to access this resource. "
        "Please, pass your API credentials in the header of the request."
    )
    return _envelope_error(40100, message, started=started, http_status=401)


def _not_found(route: str, started: float) -> JsonResponse:
    if route == auth.AISA:
        return JsonResponse(
            envelope.aisa_error("invalid_request_error", "not_found", "Unknown path."), status=404
        )
    return _envelope_error(40400, "Not Found.", started=started, http_status=404)


def _method_not_allowed(route: str, allowed: str, started: float) -> JsonResponse:
    message = f"Method not allowed; use {allowed}."
    if route == auth.AISA:
        response = JsonResponse(
            envelope.aisa_error("invalid_request_error", "method_not_allowed", message), status=405
        )
    else:
        response = _envelope_error(40405, message, started=started, http_status=405)
    response["Allow"] = allowed
    return response


def _rate_limited(route: str, retry_after: int, started: float, message: str = "") -> JsonResponse:
    if route == auth.AISA:
        message = message or "Too many requests; slow down."
        body = envelope.aisa_error("rate_limit_error", "rate_limit_exceeded", message)
        response = JsonResponse(body, status=429)
    else:
        message = message or "Rate limit per minute exceeded."
        response = _envelope_error(40202, message, started=started, http_status=429)
    response["Retry-After"] = str(retry_after)
    response["X-RateLimit-Limit"] = "60"
    response["X-RateLimit-Remaining"] = "0"
    response["X-RateLimit-Reset"] = str(int(time.time()) + retry_after)
    return response


def _parse_tasks(body: bytes) -> tuple[list | None, str]:
    """The POST body as a list of tasks, or None and what is wrong with it."""
    try:
        tasks = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, "Invalid JSON in the POST body."
    if not isinstance(tasks, list):
        return None, "The POST body must be a JSON array of tasks."
    if not tasks:
        return None, "The POST body contains no tasks."
    return tasks, ""


def _drop_connection(request: HttpRequest) -> bool:
    """Shut the client's connection so it sees no reply at all (the `reset` fault). Best effort.

    gunicorn hands the socket over in the environ; Django's development and live-test servers only through
    the input stream: a LimitedStream whose bound `_read` belongs to the socket file, whose raw SocketIO
    holds the socket.
    """
    sock = request.META.get("gunicorn.socket")
    if sock is None:
        socket_file = getattr(getattr(request.META.get("wsgi.input"), "_read", None), "__self__", None)
        sock = getattr(getattr(socket_file, "raw", None), "_sock", None)
    if not isinstance(sock, socket.socket):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    return True


def _apply_reply_fault(request: HttpRequest, fault, response: HttpResponse) -> HttpResponse:
    """Break (or delay) a reply that has already been worked out."""
    if fault.mode == "hang":
        time.sleep(fault.seconds)
        return response
    if fault.mode == "malformed":
        # Half of the real body: valid UTF-8, invalid JSON, as when a proxy cuts a reply short.
        return HttpResponse(response.content[: len(response.content) // 2], content_type="application/json")
    if fault.mode == "reset" and _drop_connection(request):
        # Goes nowhere (the connection is closed); not a 5xx, so Django logs no misleading server error.
        return HttpResponse(status=204)
    return HttpResponse(
        "<html><body><h1>500 Internal Server Error</h1></body></html>", status=500, content_type="text/html"
    )


# --- The API ------------------------------------------------------------------------------------------------


def _answer(
    request: HttpRequest, *, route: str, provider: str, function: str, task_id: str = ""
) -> HttpResponse:
    started = time.monotonic()
    account = auth.account_for(route, request.headers.get("Authorization", ""))
    log = {"method": request.method, "path": request.path, "route": route, "provider": provider}
    log |= {"function": function, "account": account or ""}

    expected_method = "POST" if function in POST_FUNCTIONS else "GET"
    # Only a function that takes a POST reads the body; any other POST is a 405 whatever it carries.
    wants_body = request.method == "POST" and expected_method == "POST"
    tasks, problem = _parse_tasks(request.body) if wants_body else (None, "")
    if tasks is not None:
        log["tasks_in_body"] = len(tasks)

    fault, refused = None, {}
    if provider in LIVE_ONLY_PROVIDERS and function not in ("models", "live"):
        response = _not_found(route, started)  # Perplexity has no task_post, tasks_ready or task_get
    elif account is None:
        response = _unauthorized(route, started)
    elif request.method != expected_method:
        response = _method_not_allowed(route, expected_method, started)
    else:
        fault = faults.take(function=function, provider=provider)
        if (
            function in faults.REFUSING_FUNCTIONS
            and tasks
            and not (fault and fault.mode in ("rate_limit", "internal_error"))
        ):
            refused = faults.take_task_refusals(function=function, provider=provider, tasks=tasks)
        response = _dispatch(
            route, provider, function, task_id, account, tasks, problem, fault, started, refused=refused
        )

    fired = fault.mode if fault else faults.TASK_REFUSED if refused else ""
    stats.log_request(http_status=response.status_code, fault=fired, **log)
    if fault and fault.mode in faults.ACCEPTED_FIRST:
        return _apply_reply_fault(request, fault, response)
    return response


def _dispatch(
    route, provider, function, task_id, account, tasks, problem, fault, started, *, refused: dict
) -> JsonResponse:
    """The answer to an authenticated request, with the faults that replace processing applied
    (`refused`: the tasks of a task_post or live call that a `task_refused` fault refuses, by index)."""
    if fault and fault.mode == "rate_limit":
        return _rate_limited(route, fault.retry_after, started)
    if fault and fault.mode == "internal_error":
        return JsonResponse(
            services.internal_error(provider=provider, function=function, tasks=tasks, started=started)
        )
    if problem:
        return _envelope_error(40000, problem, started=started, http_status=200)
    # A GET whose reply is about to be lost must not count as having collected anything.
    collect = not (fault and fault.mode in {"http500", "malformed", "reset"})
    if function == "models":
        body = services.models(provider=provider, started=started)
    elif function == "task_post":
        body = services.tasks_post(
            provider=provider, account=account, tasks=tasks, started=started, refused=refused
        )
        if settings.SANDBOX_POST_DELAY > 0:  # accepted; the reply takes a real upstream's round trip
            time.sleep(settings.SANDBOX_POST_DELAY)
    elif function == "live" and refused:  # refused before it runs: no live slot, no model's delay
        body = services.live(
            provider=provider, account=account, tasks=tasks, started=started, refused=refused
        )
    elif function == "live":
        with live_slot(account=account, provider=provider) as running:
            if not running:
                return _rate_limited(
                    route, 1, started, message=f"More than {MAX_CONCURRENT_LIVE} live tasks at once."
                )
            live_delay()
            body = services.live(provider=provider, account=account, tasks=tasks, started=started)
    elif function == "tasks_ready":
        body = services.tasks_ready(provider=provider, account=account, started=started)
    elif function == "task_get":
        body = services.task_get(
            provider=provider, account=account, task_id=task_id, started=started, collect=collect
        )
    elif function == "user_data":
        body = services.user_data(account=account, login=account.removeprefix("login:"), started=started)
    else:
        raise ValueError(function)
    return JsonResponse(body)


@login_not_required
@csrf_exempt
def llm_responses(request: HttpRequest, route: str, provider: str, function: str) -> HttpResponse:
    """models, task_post, tasks_ready and live of one provider."""
    return _answer(request, route=route, provider=provider, function=function)


@login_not_required
@csrf_exempt  # a program's POST here is the API's 405, not a CSRF page, and its form is never parsed
def task_get(request: HttpRequest, route: str, provider: str, task_id: str) -> HttpResponse:
    return _answer(request, route=route, provider=provider, function="task_get", task_id=task_id)


@login_not_required
@csrf_exempt
def user_data(request: HttpRequest) -> HttpResponse:
    """DataForSEO's account endpoint (balance), used to verify a login; AIsa has no equivalent."""
    return _answer(request, route=auth.DATAFORSEO, provider="", function="user_data")


@login_not_required
@csrf_exempt
def not_found(request: HttpRequest, route: str) -> HttpResponse:
    response = _not_found(route, time.monotonic())
    stats.log_request(method=request.method, path=request.path, route=route, http_status=404)
    return response


# --- Controls for tests (exist only in the stand-in) -------------------------------------------------------


def _fault_json(fault) -> dict:
    return {
        "id": fault.pk,
        "mode": fault.mode,
        "function": fault.function or None,
        "provider": fault.provider or None,
        "remaining": fault.remaining,
        "seconds": fault.seconds,
        "retry_after": fault.retry_after,
        "status_code": fault.status_code,
        "prompt_contains": fault.prompt_contains or None,
        "position": fault.position,
    }


@login_not_required
@csrf_exempt
def fault_control(request: HttpRequest) -> JsonResponse:
    """GET: pending faults. POST {"mode", "function", "provider", "times", "seconds", "retry_after",
    "status_code", "prompt_contains", "position"}: inject one. DELETE: clear them all. See sandbox.faults
    for the modes."""
    if request.method == "GET":
        return JsonResponse({"faults": [_fault_json(f) for f in faults.pending()]})
    if request.method == "DELETE":
        return JsonResponse({"cleared": faults.clear()})
    if request.method != "POST":
        return JsonResponse({"error": "Use GET, POST or DELETE."}, status=405)
    try:
        spec = json.loads(request.body.decode("utf-8"))
        if not isinstance(spec, dict):
            raise ValueError("The body must be a JSON object.")
        allowed = {"mode", "function", "provider", "times", "seconds", "retry_after"}
        allowed |= {"status_code", "prompt_contains", "position"}
        if set(spec) - allowed:
            raise ValueError(f"Unknown keys: {', '.join(sorted(set(spec) - allowed))}.")
        fault = faults.inject(spec.pop("mode", ""), **spec)
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(_fault_json(fault), status=201)


@login_not_required
@csrf_exempt
def request_log(request: HttpRequest) -> JsonResponse:
    """GET ?function=&method=&provider=&route=: how many logged requests match. DELETE: clear the log."""
    if request.method == "DELETE":
        return JsonResponse({"cleared": stats.clear()})
    filters = {k: request.GET[k] for k in ("function", "method", "provider", "route") if request.GET.get(k)}
    return JsonResponse({"count": stats.request_count(**filters), "filters": filters})
