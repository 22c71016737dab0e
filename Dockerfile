# The deploycheck image: web (gunicorn), worker, beat and the migrate job all run it.
# Only the code goes in (see .dockerignore): keys, databases and broker files live in
# volumes or in the environment, never in a layer.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DEPLOYCHECK_VAR_DIR=/var/lib/deploycheck \
    DEPLOYCHECK_STATIC_ROOT=/app/staticfiles

WORKDIR /app
RUN groupadd --system deploycheck \
 && useradd --system --gid deploycheck --home-dir /app --no-create-home --shell /usr/sbin/nologin deploycheck

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY deploycheck deploycheck
COPY checklists checklists
RUN pip install .

COPY manage.py gunicorn.conf.py ./
COPY templates templates
COPY static static

# Static files are part of the image, hashed and compressed; the key exists only for this
# command and is not a secret of any deployment.
RUN SECRET_KEY=collectstatic-at-build-only DEBUG=0 python manage.py collectstatic --noinput \
 && mkdir -p /var/lib/deploycheck \
 && chown deploycheck:deploycheck /var/lib/deploycheck

USER deploycheck
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "deploycheck.wsgi"]
