# The dashboard: `docker run IMAGE` serves it (gunicorn), `docker run IMAGE worker` runs the background jobs.
# Configuration comes from the environment at run time; see README.md.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app

COPY requirements.txt .
RUN pip install --require-hashes -r requirements.txt

# The code stays owned by root, read-only for the app user; only var/ (SQLite, if used) is writable.
COPY . .

# collectstatic imports the settings, which refuse to load without secrets: throwaway values, for this step only.
# collectstatic_if_changed also leaves the stamp that lets `web` skip collecting again at start-up.
RUN SECRET_KEY=collectstatic-only-throwaway-value-0123456789abcdefghijklmnop \
    CREDENTIAL_KEYS=Y29sbGVjdHN0YXRpYy1vbmx5LWtleS0zMi1ieXRlcyE= \
    python manage.py collectstatic_if_changed \
    && mkdir -p var \
    && chown app:app var

USER app

EXPOSE 8000
ENTRYPOINT ["bin/entrypoint"]
CMD ["web"]
