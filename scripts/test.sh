#!/usr/bin/env bash
# `make test`: the whole suite on real Postgres and real Redis.
# Uses DATABASE_URL / REDIS_URL when set, else the local servers, starting them when installed
# but stopped (and stopping again what it started).
set -euo pipefail
cd "$(dirname "$0")/.."
started=()
stop_started() {
  for s in "${started[@]}"; do
    case "$s" in
      postgres) pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main stop >/dev/null 2>&1 || true ;;
      redis) redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true ;;
    esac
  done
}
trap stop_started EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -z "${DATABASE_URL:-}" ]; then
  if ! port_open 5432; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      echo "Starting the local PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
      started+=(postgres)
    else
      echo "No DATABASE_URL and no PostgreSQL on 127.0.0.1:5432: install postgresql or set DATABASE_URL" >&2
      exit 1
    fi
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/deploycheck"
fi
if [ -z "${REDIS_URL:-}" ]; then
  if ! port_open 6379; then
    if command -v redis-server >/dev/null; then
      echo "Starting the local Redis"
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
      started+=(redis)
      for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
    else
      echo "No REDIS_URL and no Redis on 127.0.0.1:6379: install redis-server or set REDIS_URL" >&2
      exit 1
    fi
  fi
  export REDIS_URL="redis://127.0.0.1:6379/0"
fi
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key-not-for-production}"
export DEBUG=0 SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0 DEPLOYCHECK_MANIFEST_STATIC=0
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost,testserver}"
export DEPLOYCHECK_VAR_DIR="${DEPLOYCHECK_VAR_DIR:-$PWD/var/test}"
export DJANGO_ALLOW_ASYNC_UNSAFE=true
# A queue of this run's own: a worker left over from another run (or another checkout
# testing at the same time) must not take this run's checks.
export DEPLOYCHECK_QUEUE="${DEPLOYCHECK_QUEUE:-deploycheck-test-$$}"
mkdir -p "$DEPLOYCHECK_VAR_DIR" test-artifacts
.venv/bin/python -m pytest "$@"
