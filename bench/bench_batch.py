"""A 1,000-task batch through the product vs a bare `requests` loop posting the same 10 chunks.

Run: .venv/bin/python bench/bench_batch.py [tasks]

The stand-in upstream is served over real HTTP by a threaded wsgiref server on a free 127.0.0.1 port
(the whole Django app, SQLite in a temp dir). The product's figure is `tasks.batches.batch_submit`:
creating the batch and its task rows, reserving budget, posting ≤ 100 tasks per call and recording each
outcome. The baseline posts the same task bodies in the same chunks with `requests` and does nothing else.
The plan (CSV parsing and checking each task with the builder's form) is timed separately.
"""

import json
import sys
import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from _builder_setup import make_catalog, make_credential, make_member, setup_django

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
CHUNK = 100


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve():
    from django.core.wsgi import get_wsgi_application

    server = make_server(
        "127.0.0.1", 0, get_wsgi_application(), server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def main() -> None:
    setup_django()
    import requests

    from tasks import batches
    from tasks.prompt_templates import template_create

    make_catalog()
    user = make_member()
    server, url = serve()
    base_url = f"{url}/sandbox/apis/v1/dataforseo"
    credential = make_credential(base_url)
    fields = {"user_prompt": "Tell me about {{city}}", "model_name": "gpt-4.1"}
    template = template_create(name="Bench", provider="chat_gpt", fields=fields, user=user)
    rows = "city\n" + "".join(f"City number {i}\n" for i in range(TASKS))

    start = time.perf_counter()
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=rows, models=["gpt-4.1"], credential=credential
    )
    plan_seconds = time.perf_counter() - start
    assert plan.ok, plan.errors[:3]

    # Baseline: the same bodies, the same chunks, a bare requests loop.
    session = requests.Session()
    post_url = f"{base_url}/ai_optimization/chat_gpt/llm_responses/task_post"
    headers = {"Authorization": "Bearer sandbox-key", "Content-Type": "application/json"}
    session.post(post_url, data=json.dumps(plan.bodies[:1]), headers=headers, timeout=60)  # warm-up
    start = time.perf_counter()
    for i in range(0, len(plan.bodies), CHUNK):
        reply = session.post(
            post_url, data=json.dumps(plan.bodies[i : i + CHUNK]), headers=headers, timeout=60
        )
        assert reply.status_code == 200 and reply.json()["tasks_error"] == 0
    bare_seconds = time.perf_counter() - start

    start = time.perf_counter()
    batch = batches.batch_submit(plan=plan, credential=credential, user=user, idempotency_key="bench")
    product_seconds = time.perf_counter() - start
    submitted = batch.tasks.filter(status="submitted").count()
    assert submitted == TASKS, f"{submitted} of {TASKS} submitted"

    server.shutdown()
    print(f"{TASKS} tasks, {len(range(0, TASKS, CHUNK))} upstream calls")
    print(f"  plan (CSV + form check per task): {plan_seconds:.2f} s")
    print(f"  bare requests loop:               {bare_seconds:.2f} s")
    print(f"  product batch_submit:             {product_seconds:.2f} s")
    print(f"  ratio product / bare:             {product_seconds / bare_seconds:.2f}")


if __name__ == "__main__":
    main()
