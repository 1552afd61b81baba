"""Live validation round trip: server time of POST /new/validate/ (the builder's one validation endpoint).

Run: .venv/bin/python bench/bench_validation.py [requests]

Each request binds the full task form (a cross-field error included, so every error container, the preview
and the submit button are rendered), through Django's middleware stack with a logged-in session. Timed
around the test client's request, which is the server time plus the test client's own small overhead.
"""

import sys
import time

from _builder_setup import make_catalog, make_credential, make_member, percentile, setup_django

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 500


def main() -> None:
    setup_django()
    from django.test import Client

    make_catalog()
    user = make_member()
    credential = make_credential("http://127.0.0.1:9/sandbox/apis/v1/dataforseo")
    client = Client()
    client.force_login(user)
    cases = [
        {"trigger_field": "temperature", "temperature": "0.5", "top_p": "0.5"},  # cross-field error
        {"trigger_field": "user_prompt", "user_prompt": "Best {{dish}} in Paris?", "var_dish": "pho"},
        {"trigger_field": "max_output_tokens", "model_name": "o3-mini", "max_output_tokens": "100"},
        {"trigger_field": "tag", "tag": "team-a", "web_search": "on", "web_search_country_iso_code": "FR"},
    ]
    base = {
        "provider": "chat_gpt",
        "credential": str(credential.pk),
        "idempotency_key": "bench",
        "user_prompt": "What is the capital of France?",
        "model_name": "gpt-4.1",
        "chain-0-role": "user",
        "chain-0-message": "Hello",
    }
    for case in cases:  # warm-up: template loading, first queries
        assert client.post("/new/validate/", {**base, **case}, HTTP_HX_REQUEST="true").status_code == 200
    timings = []
    for i in range(REQUESTS):
        data = {**base, **cases[i % len(cases)]}
        start = time.perf_counter()
        response = client.post("/new/validate/", data, HTTP_HX_REQUEST="true")
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    print(f"validation endpoint, {REQUESTS} requests (ms): "
          f"p50 {percentile(timings, 0.50):.2f}  p95 {percentile(timings, 0.95):.2f}  "
          f"max {max(timings):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
