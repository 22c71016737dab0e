#!/usr/bin/env bash
# `make run`: the web app on http://127.0.0.1:8000 and a Celery worker with its beat schedule.
# With no DATABASE_URL / REDIS_URL: a SQLite file and kombu's filesystem broker, no server needed.
# `scripts/run.sh manage ARGS...` (`make manage ARGS="..."`): one management command in that same
# environment (var dir, DEBUG, secret key, database, broker), e.g. from a second terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
VAR="${DEPLOYCHECK_VAR_DIR:-$PWD/var}"
export DEPLOYCHECK_VAR_DIR="$VAR"
mkdir -p "$VAR"
export DEBUG="${DEBUG:-1}"
if [ -z "${SECRET_KEY:-}" ]; then
  # A key of this machine's own, kept so sessions and encrypted variables survive a restart.
  [ -s "$VAR/secret_key" ] || $PY -c "import secrets; print(secrets.token_urlsafe(50))" > "$VAR/secret_key"
  chmod 600 "$VAR/secret_key"
  SECRET_KEY="$(cat "$VAR/secret_key")"
  export SECRET_KEY
fi
if [ "${1:-}" = manage ]; then
  shift
  exec $PY manage.py "$@"
fi
PORT="${PORT:-8000}"
$PY manage.py migrate --noinput
$PY manage.py load_starter_templates
$PY manage.py bootstrap_admin

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

.venv/bin/celery -A deploycheck worker --beat --loglevel=INFO \
  --schedule "$VAR/celerybeat-schedule" > "$VAR/worker.log" 2>&1 &
pids+=($!)
echo "Celery worker with beat started (log: $VAR/worker.log)"
echo "deploycheck on http://127.0.0.1:${PORT}/  (Ctrl-C stops the web app and the worker)"
$PY manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!)
wait -n "${pids[@]}"
