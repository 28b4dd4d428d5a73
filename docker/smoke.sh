#!/bin/sh
# Smoke test of compose.yaml and the Dockerfile on a machine with a Docker engine:
#
#   docker/smoke.sh
#
# builds and starts the stack (`docker compose up -d --build`), waits until both
# containers are healthy, mints a token inside the pickpack container, posts one scan and
# reads it back over the port compose publishes on 127.0.0.1, restarts the pickpack
# container, reads the scan again (same dev secret from the data volume, same events from
# PostgreSQL's volume), then `docker compose down` (named volumes are kept; add
# `docker compose down -v` to forget them). Exits 0 when every step passed; otherwise
# prints which step failed, the containers' state and their last log lines, takes the
# stack down and exits 1.
#
# It runs compose.yaml's own project (`name: pickpack`): a stack already running from
# this file is rebuilt, restarted and taken down by it.
# Not part of the pytest suite: it needs a Docker engine and the base images
# (docker/local-images.sh makes stand-ins for a machine without a registry).
# SMOKE_TIMEOUT (seconds, default 180) bounds each wait for health.
set -eu

cd "$(dirname "$0")/.."
PROFILE= # the default stack: postgres and pickpack
# shellcheck source=docker/smoke-lib.sh
. docker/smoke-lib.sh
start_run curl
EVENT_ID="smoke-$STAMP"
note_missing_images python:3.11-slim postgres:16

# GET the tenant's events since 2020 and count our event in them (0 or 1 expected).
count_event() {
    body=$(curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" \
        "$BASE/pick-pack/$TENANT/events?timestamp=2020-01-01T00:00:00Z") ||
        fail "GET events failed"
    printf '%s' "$body" | grep -o "\"eventId\":\"$EVENT_ID\"" | wc -l | tr -d ' '
}
done_step

step "building and starting the stack (docker compose up -d --build)"
out=$(mktemp)
dc up -d --build --quiet-pull >"$out" 2>&1 ||
    { tail -n 40 "$out" | sed 's/^/    /'; rm -f "$out"; fail "docker compose up failed"; }
rm -f "$out"
done_step

step "waiting for postgres and pickpack to be healthy"
wait_healthy postgres pickpack
done_step

step "finding the published port"
published=$(dc port pickpack 8000) || fail "pickpack publishes no port 8000"
case "$published" in
    127.0.0.1:*) ;;
    *) fail "pickpack's port 8000 is published on $published, not on 127.0.0.1 only" ;;
esac
BASE="http://$published"
ready=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$BASE/ready") || fail "GET /ready failed"
[ "$ready" = 200 ] || fail "GET /ready answered $ready"
say "     $BASE/ready answers 200"
done_step

step "minting a token inside the container (pickpack token)"
TOKEN=$(dc exec -T pickpack pickpack token --tenant "$TENANT" | tail -n 1)
case "$TOKEN" in
    *.*.*) ;;
    *) fail "pickpack token printed no JWT" ;;
esac
done_step

step "posting scan $EVENT_ID"
answer=$(curl -sS --max-time 10 -X POST "$BASE/pick-pack/$TENANT/events" \
    -H "Authorization: Bearer $TOKEN" -H "saas-token: $TENANT" -H "Content-Type: application/json" \
    -d "{\"eventId\":\"$EVENT_ID\",\"orderNumber\":\"smoke-order\",\"productId\":\"smoke-product\",
         \"deliveryCycle\":\"2023-10-13-11-test\",\"pickedAmount\":2,\"packedAmount\":1,
         \"canceledAmount\":0,\"supplierId\":\"s1\",\"unit\":\"H87\",
         \"timestamp\":\"2024-01-02T03:04:05.000Z\",\"site\":\"main\",\"bookProduct\":true}") ||
    fail "POST events failed"
case "$answer" in
    *'"code":200'*) ;;
    *) fail "POST events answered: $answer" ;;
esac
done_step

step "reading the scan back"
n=$(count_event)
[ "$n" = 1 ] || fail "GET events shows $EVENT_ID $n times, expected once"
done_step

step "restarting the pickpack container"
before=$(docker inspect -f '{{.State.StartedAt}}' "$(dc ps -q pickpack)")
dc restart pickpack >/dev/null 2>&1 || fail "docker compose restart failed"
after=$(docker inspect -f '{{.State.StartedAt}}' "$(dc ps -q pickpack)")
[ "$before" != "$after" ] || fail "the pickpack container did not restart"
wait_healthy postgres pickpack
done_step

step "reading the scan again after the restart"
n=$(count_event)
[ "$n" = 1 ] || fail "after the restart GET events shows $EVENT_ID $n times, expected once"
done_step

step "taking the stack down (docker compose down)"
take_down
done_step

say "PASSED in $(($(date +%s) - START)) s: scan $EVENT_ID posted, read back, and read again after a restart"
