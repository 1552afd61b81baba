"""Endpoints the upstream calls when a task is done (api-reference §5). No login, no CSRF: the URL
carries a per-task signature that is checked before any database work."""

import json
import logging
import zlib

from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from tasks.fragments import wants_fragment
from tasks.models import Task
from tasks.submission import callbacks, collection, reconcile
from tasks.submission.queue import queue_state

logger = logging.getLogger(__name__)

# A finished task's JSON is tens of kilobytes; these caps stop a gzip bomb or a flood early.
MAX_POSTBACK_BYTES = 2 * 1024 * 1024
MAX_POSTBACK_DECOMPRESSED = 16 * 1024 * 1024


class PayloadTooLarge(Exception):
    pass


def _verified_task(task_id, token) -> Task:
    """The task the URL names, if its token is valid; a task without upstream id only while it may have
    been sent (its reply lost, or its chunk being sent): the callback then tells us its id."""
    if not callbacks.callback_token_is_valid(task_id, token):
        raise Http404
    task = Task.objects.filter(pk=task_id).first()
    if task is None or not (task.upstream_task_id or task.status in reconcile.AWAITING_ID):
        raise Http404
    return task


@csrf_exempt
@login_not_required
@require_GET
def pingback(request, task_id, token):
    task = _verified_task(task_id, token)
    if not task.upstream_task_id:
        # Our URL asks the upstream to put its task id in `?id=`; the collection it arms fetches the result.
        reconcile.callback_pingback_reconcile(task=task, upstream_task_id=request.GET.get("id"))
    elif not task.is_final:
        collection.fetch_after_callback.enqueue(str(task.pk))
    return HttpResponse("ok", content_type="text/plain")


def read_postback_body(request) -> bytes:
    """The body, gunzipped when it starts with gzip's magic bytes, within hard size caps."""
    raw = request.read(MAX_POSTBACK_BYTES + 1)
    if len(raw) > MAX_POSTBACK_BYTES:
        raise PayloadTooLarge
    if raw[:2] != b"\x1f\x8b":
        return raw
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = decompressor.decompress(raw, MAX_POSTBACK_DECOMPRESSED)
    except zlib.error as exc:
        raise ValueError("not valid gzip") from exc
    if decompressor.unconsumed_tail or len(body) >= MAX_POSTBACK_DECOMPRESSED:
        raise PayloadTooLarge
    return body


@csrf_exempt
@login_not_required
@require_POST
def postback(request, task_id, token):
    task = _verified_task(task_id, token)
    try:
        envelope = json.loads(read_postback_body(request), parse_constant=_refuse_constant)
    except PayloadTooLarge:
        return HttpResponse("payload too large", status=413, content_type="text/plain")
    except (ValueError, RecursionError):  # not JSON (NaN and Infinity are not), not UTF-8, absurdly nested
        return HttpResponseBadRequest("body is not JSON or gzip-compressed JSON", content_type="text/plain")
    try:
        if not task.upstream_task_id:
            task = reconcile.callback_postback_reconcile(task=task, envelope=envelope)
        callbacks.callback_postback_apply(task=task, envelope=envelope)
    except reconcile.PostbackNotOurs as exc:
        return HttpResponseBadRequest(f"not applied: {exc}", content_type="text/plain")
    except callbacks.PostbackRejected as exc:
        return HttpResponseBadRequest(f"not applied: {exc}", content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


QUEUE_PAGE = "tasks/submission/queue.html"


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_GET
def sending_queue(request):
    """For admins: chunks waiting, sending, rate-limited and lost; workers seen in the last minute; the
    oldest waiting chunk. Polled every 5 s (the `live` partial)."""
    template = f"{QUEUE_PAGE}#live" if wants_fragment(request) else QUEUE_PAGE
    return render(request, template, {"queue": queue_state()})
