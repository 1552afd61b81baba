"""The stand-in's routes, mounted at /sandbox/ when SANDBOX_ENABLED.

AIsa style:       /sandbox/apis/v1/dataforseo/ai_optimization/{provider}/llm_responses/{function}
DataForSEO style: /sandbox/v3/ai_optimization/{provider}/llm_responses/{function}
(provider: chat_gpt, claude, gemini, perplexity; perplexity has only models and live)
plus /sandbox/v3/appendix/user_data, and the test controls /sandbox/_faults/ and /sandbox/_requests/.
Anything else under either prefix is a 404 in that route's own error shape.
"""

from django.urls import path, re_path

from sandbox import views
from sandbox.auth import AISA, DATAFORSEO

PREFIXES = {AISA: r"apis/v1/dataforseo", DATAFORSEO: r"v3"}
TAIL = r"/ai_optimization/(?P<provider>chat_gpt|claude|gemini|perplexity)/llm_responses/"

urlpatterns = [
    path("_faults/", views.fault_control, name="sandbox-faults"),
    path("_requests/", views.request_log, name="sandbox-requests"),
    re_path(r"^v3/appendix/user_data/?$", views.user_data, name="sandbox-user-data"),
]
for route, prefix in PREFIXES.items():
    urlpatterns += [
        re_path(
            rf"^{prefix}{TAIL}(?P<function>models|task_post|tasks_ready|live)/?$",
            views.llm_responses,
            {"route": route},
            name=f"sandbox-{route}-function",
        ),
        re_path(
            rf"^{prefix}{TAIL}task_get/(?P<task_id>[A-Za-z0-9-]{{1,64}})/?$",
            views.task_get,
            {"route": route},
            name=f"sandbox-{route}-task-get",
        ),
        re_path(rf"^{prefix}/", views.not_found, {"route": route}),
    ]
