"""A page's own SQL, replayed: the floor a page's time is compared with (issue 'Pages as fast as their
queries'). The page is requested once with every query recorded (SQL and parameters); then, round after
round, the page and its recorded SELECTs replayed on the same warm connection alternate, so both see the same
machine load. Writes (the session's save) are not replayed.
"""

import statistics
import time


def page_and_sql(
    client, url: str, *, rounds: int, params: dict | None = None, headers: dict | None = None
) -> dict:
    """p50/p95 of the page and p50 of its SELECTs replayed, in ms, alternating for `rounds` rounds
    (`headers`: the request's, e.g. HX-Request for an htmx fragment)."""
    from django.db import connection

    for _ in range(3):  # warm caches, connection and template loading
        response = client.get(url, params, headers=headers)
        assert response.status_code == 200, (url, response.status_code)
    recorded = []

    def record(execute, sql, sql_params, many, context):
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            recorded.append((sql, sql_params))
        return execute(sql, sql_params, many, context)

    with connection.execute_wrapper(record):
        client.get(url, params, headers=headers)

    pages, sqls = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url, params, headers=headers)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
        pages.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for sql, sql_params in recorded:
                cursor.execute(sql, sql_params)
                cursor.fetchall()
        sqls.append((time.perf_counter() - started) * 1000)
    pages.sort()
    page_p50, sql_p50 = statistics.median(pages), statistics.median(sqls)
    return {
        "p50": page_p50,
        "p95": pages[min(len(pages) - 1, int(len(pages) * 0.95))],
        "sql_p50": sql_p50,
        "ratio": page_p50 / sql_p50 if sql_p50 else float("inf"),
        "queries": len(recorded),
    }
