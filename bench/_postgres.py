"""A benchmark's own PostgreSQL database, made through the server's `postgres` database."""

from urllib.parse import urlsplit


def ensure_database(url: str, *, fresh: bool = False) -> str:
    """Create the database `url` names when it is missing (`fresh`: drop it first); return `url`."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return url
