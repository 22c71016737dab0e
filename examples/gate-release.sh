#!/bin/sh
# Gate a release on deploycheck, with curl only (POSIX sh: runs in curlimages/curl, alpine,
# ubuntu-latest). Opens the run for this release, starts its verifications, then waits for the
# gate: exits 0 once the run went live (approved), 1 if it was aborted or rolled back
# (rejected), 2 on a bad setup or when DEPLOYCHECK_TIMEOUT passes first.
#
#   DEPLOYCHECK_URL          https://deploycheck.example.com
#   DEPLOYCHECK_TOKEN        an API token of a member (`manage.py create_api_token ci-bot`)
#   DEPLOYCHECK_TEMPLATE     the checklist template, id or slug (web-service-launch)
#   DEPLOYCHECK_PROJECT      the project, e.g. the repository's name
#   DEPLOYCHECK_ENVIRONMENT  the environment, e.g. production
#   DEPLOYCHECK_VERSION      the release: the commit sha or the tag
#   DEPLOYCHECK_RUN_KEY      optional: the same key opens the same run (a retried job); default: one per call
#   DEPLOYCHECK_TIMEOUT      optional: seconds to wait for the sign-off (3600)
#   DEPLOYCHECK_INTERVAL     optional: seconds between two looks at the gate (15)
set -eu

fail() { echo "deploycheck: $*" >&2; exit 2; }
for name in DEPLOYCHECK_URL DEPLOYCHECK_TOKEN DEPLOYCHECK_TEMPLATE DEPLOYCHECK_PROJECT DEPLOYCHECK_ENVIRONMENT DEPLOYCHECK_VERSION; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || fail "$name is not set"
done
url=${DEPLOYCHECK_URL%/}
timeout=${DEPLOYCHECK_TIMEOUT:-3600}
interval=${DEPLOYCHECK_INTERVAL:-15}
key=${DEPLOYCHECK_RUN_KEY:-$DEPLOYCHECK_PROJECT-$DEPLOYCHECK_ENVIRONMENT-$DEPLOYCHECK_VERSION-$(date +%s)-$$}

# JSON strings for the body: backslashes and quotes escaped (names hold no control characters).
json() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
# One call: the answer's body in $body, its HTTP status in $status. Network errors are retried.
call() {
  answer=$(curl -sS --retry 5 --retry-connrefused --max-time 30 -w '\n%{http_code}' \
    -H "Authorization: Bearer $DEPLOYCHECK_TOKEN" -H "Content-Type: application/json" "$@") || fail "cannot reach $url"
  status=$(printf '%s' "$answer" | tail -n 1)
  body=$(printf '%s' "$answer" | sed '$d')
}
# The first value of a key in the answer (a number or a string without quotes in it).
field() { printf '%s' "$body" | grep -o "\"$1\": *\"\{0,1\}[^\",}]*" | head -n 1 | sed 's/^[^:]*: *"\{0,1\}//'; }

call -X POST "$url/api/v1/runs" -H "Idempotency-Key: $key" --data "{\"template\": $(json "$DEPLOYCHECK_TEMPLATE"), \"project\": $(json "$DEPLOYCHECK_PROJECT"), \"environment\": $(json "$DEPLOYCHECK_ENVIRONMENT"), \"version\": $(json "$DEPLOYCHECK_VERSION")}"
[ "$status" = 201 ] || fail "could not open the run ($status): $(field error)"
run=$(field id)
echo "deploycheck: run $run for $DEPLOYCHECK_PROJECT $DEPLOYCHECK_VERSION → $DEPLOYCHECK_ENVIRONMENT: $(field html_url)"

call -X POST "$url/api/v1/runs/$run/verify" --data '{}'
case $status in
  202) echo "deploycheck: verifications started ($(field queued) checks)" ;;
  *) echo "deploycheck: verifications not started ($status): $(field error)" ;;  # the gate still waits for them
esac

waited=0
last=""
while :; do
  call -G "$url/api/v1/gate" --data-urlencode "project=$DEPLOYCHECK_PROJECT" \
    --data-urlencode "environment=$DEPLOYCHECK_ENVIRONMENT" --data-urlencode "version=$DEPLOYCHECK_VERSION"
  [ "$status" = 200 ] || fail "the gate answered $status: $(field error)"
  decision=$(field decision)
  case $decision in
    approved) echo "deploycheck: approved, the run went live"; exit 0 ;;
    rejected) echo "deploycheck: rejected, the run was aborted or rolled back" >&2; exit 1 ;;
  esac
  if [ "$body" != "$last" ]; then
    echo "deploycheck: $decision: $body"
    last=$body
  fi
  [ "$waited" -lt "$timeout" ] || fail "still $decision after ${timeout}s"
  sleep "$interval"
  waited=$((waited + ${interval%.*} + 1))
done
