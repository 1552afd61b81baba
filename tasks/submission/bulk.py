"""Writing many rows at once without building a model instance for each.

`bulk_create` builds a model instance per row and prepares every field of every row: for a 1,000-task
batch that is 1,000 `Task.__init__` calls and ~39,000 field preparations, most of them of values every
row shares. Here a shared value is prepared once and only a row's own values per row, and the rows go
to the database in one operation: `executemany` on SQLite (which loops in C), COPY on PostgreSQL
(bench/bench_batch.py measures it; the figures are in docs/performance.md).
"""

from collections.abc import Callable
from contextlib import contextmanager

from django.db import models, transaction
from django.utils import timezone


def insert_rows(model: type[models.Model], rows: list[dict], *, same: dict | None = None) -> None:
    """INSERT `rows` into `model`'s table; `same` holds the values every row shares.

    Each row is a dict keyed by field attname (`credential_id`, not `credential`), all with the same
    keys; a row's own value wins over `same`. A field in neither is given its default, or the time now
    if it is auto_now/auto_now_add; a primary key numbered by the database is left to it. Values go
    through each field's own `get_db_prep_save`, so what is stored is what the ORM would store. There is
    no `save()` and no signal: this is for the product's own append-only writes.
    """
    if not rows:
        return
    same = same or {}
    connection = transaction.get_connection()
    fields = _fields(model, set(rows[0]) | set(same))
    varying = [fields[name] for name in rows[0]]
    now = timezone.now()
    shared_fields, shared_values = [], []
    for name, field in fields.items():
        if name in rows[0]:
            continue
        if name in same:
            value = same[name]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        elif field.primary_key and field.db_returning:
            continue  # an AutoField: the database numbers the rows
        else:
            value = field.get_default()
            if (field.primary_key or field.unique) and value is not None:
                raise ValueError(f"{model.__name__}.{name} is unique: give it in each row.")
        shared_fields.append(field)
        shared_values.append(field.get_db_prep_save(value, connection))

    columns = [*varying, *shared_fields]
    shared = tuple(shared_values)
    prepared = [
        list(map(_preparer(field, connection), (row[field.attname] for row in rows))) for field in varying
    ]
    params = [values + shared for values in zip(*prepared, strict=True)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(field.column) for field in columns)
    with _cursor(connection) as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", params)  # noqa: S608


UPDATE_ROWS_PER_STATEMENT = 1000  # well under PostgreSQL's 65,535 parameters a statement


def update_rows(model: type[models.Model], pairs: list[tuple], *, each: str, same: dict) -> None:
    """UPDATE the rows named by `pairs` of (primary key, value): set field `each` to the row's own
    value and every field of `same` to its value, in one statement joined to a VALUES list.
    """
    if not pairs:
        return
    connection = transaction.get_connection()
    fields = _fields(model, {each, *same})
    pk = model._meta.pk
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    assignments = [f"{quote(fields[name].column)} = %s" for name in same]
    # SQLite and PostgreSQL both name a VALUES list's columns column1, column2, ….
    assignments.append(f"{quote(fields[each].column)} = v.column2")
    shared = [fields[name].get_db_prep_save(value, connection) for name, value in same.items()]
    prepare_value = _preparer(fields[each], connection)
    rows = [(pk.get_db_prep_value(key, connection), prepare_value(value)) for key, value in pairs]
    limit = connection.features.max_query_params or UPDATE_ROWS_PER_STATEMENT * 2
    size = min(UPDATE_ROWS_PER_STATEMENT, (limit - len(shared)) // 2)
    with _cursor(connection) as cursor:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            cursor.execute(
                f"UPDATE {table} SET {', '.join(assignments)} "  # noqa: S608
                f"FROM (VALUES {', '.join(['(%s, %s)'] * len(batch))}) AS v "
                f"WHERE {table}.{quote(pk.column)} = v.column1",
                [*shared, *(value for row in batch for value in row)],
            )


def _preparer(field: models.Field, connection) -> Callable[[object], object]:
    """`field.get_db_prep_save` for one value, but a string for a plain CharField or TextField is
    returned as it is without the calls that would return it unchanged."""
    prepare = field.get_db_prep_save
    if type(field) in (models.CharField, models.TextField):
        return lambda value: value if type(value) is str else prepare(value, connection)
    return lambda value: prepare(value, connection)


def _fields(model: type[models.Model], names: set[str]) -> dict[str, models.Field]:
    fields = {field.attname: field for field in model._meta.concrete_fields}
    unknown = names - set(fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no field {', '.join(sorted(unknown))}.")
    return fields


@contextmanager
def _cursor(connection):
    """A cursor to run one statement over many rows.

    On PostgreSQL a psycopg cursor with server-side binding on the same connection (so in the same
    transaction), which also does COPY: Django's own cursor binds every value into the SQL text, which
    makes a long VALUES list a long string for psycopg to split and the server to parse. Errors are
    Django's (IntegrityError, …) either way; Django's query log
    (`connection.queries`, assertNumQueries) does not see these statements on PostgreSQL.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor
