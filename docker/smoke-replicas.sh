#!/bin/sh
# Smoke test of compose.yaml's `replicas` profile (two replicas behind HAProxy) on a
# machine with a Docker engine:
#
#   docker/smoke-replicas.sh
#
# builds and starts the profile (`docker compose --profile replicas up -d --build`),
# waits until PostgreSQL and both replicas are healthy and HAProxy shows both UP, checks
# that HAProxy is published on 127.0.0.1:8080 only, mints a token inside a replica, then
# runs scanners (devtools/scanners.py: distinct scans, each resent with its eventId until
# answered 200) through HAProxy while `docker compose restart` restarts each replica in
# turn, the next once HAProxy shows the first UP again. Passed when no scan failed (every
# scan answered 200 within the scanners' give-up time), scans flowed after each restart,
# and every acknowledged scan is stored once (packing_events, read in the postgres
# container), and the replicas tell two clients behind HAProxy apart (a client over the
# token endpoint's per-address bound does not lock out another one); then
# `docker compose --profile replicas down` (named volumes are kept).
# On a failure it names the step, prints the containers' state and last log lines, takes
# the stack down and exits 1.
#
# It runs compose.yaml's own project (`name: pickpack`): a stack already running from
# this file is rebuilt, restarted and taken down by it. Not part of the pytest suite; the
# base images come from a registry or docker/local-images.sh. SMOKE_TIMEOUT (seconds,
# default 180) bounds each wait; SMOKE_CLIENTS (default 4) is the number of scanners.
set -eu

cd "$(dirname "$0")/.."
PROFILE=replicas
# shellcheck source=docker/smoke-lib.sh
. docker/smoke-lib.sh
start_run
STATS=http://127.0.0.1:8404/stats
note_missing_images python:3.11-slim postgres:16 haproxy:2.6
done_step

step "building and starting the profile (docker compose --profile replicas up -d --build)"
out=$(mktemp)
dc up -d --build --quiet-pull >"$out" 2>&1 ||
    { tail -n 40 "$out" | sed 's/^/    /'; rm -f "$out"; fail "docker compose up failed"; }
rm -f "$out"
done_step

step "waiting for postgres, pickpack and pickpack-b to be healthy and UP in HAProxy"
wait_healthy postgres pickpack pickpack-b haproxy
wait_lb "$STATS" replicas a UP
wait_lb "$STATS" replicas b UP
done_step

step "finding HAProxy's published port"
published=$(dc port haproxy 8000) || fail "haproxy publishes no port 8000"
case "$published" in
    127.0.0.1:*) ;;
    *) fail "haproxy's port 8000 is published on $published, not on 127.0.0.1 only" ;;
esac
BASE="http://$published"
ready=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$BASE/ready") || fail "GET /ready failed"
[ "$ready" = 200 ] || fail "GET /ready through HAProxy answered $ready"
say "     $BASE/ready answers 200 through HAProxy"
done_step

step "minting a token inside a replica (pickpack token)"
TOKEN=$(dc exec -T pickpack pickpack token --tenant "$TENANT" | tail -n 1)
case "$TOKEN" in
    *.*.*) ;;
    *) fail "pickpack token printed no JWT" ;;
esac
done_step

step "starting ${SMOKE_CLIENTS:-4} scanners through HAProxy"
start_scanners "$BASE" "$TOKEN"
took=$(wait_flowing 100)
say "     scans flowing: 100 acknowledged in $took s"
done_step

for service in pickpack pickpack-b; do
    case "$service" in
        pickpack) server=a ;;
        *) server=b ;;
    esac
    step "restarting $service while scans flow (docker compose restart $service)"
    id=$(dc ps -q "$service")
    before=$(docker inspect -f '{{.State.StartedAt}}' "$id")
    from=$(acked)
    dc restart "$service" >/dev/null 2>&1 || fail "docker compose restart $service failed"
    [ "$(docker inspect -f '{{.State.StartedAt}}' "$id")" != "$before" ] ||
        fail "$service did not restart"
    say "     $service stopped and started; $(($(acked) - from)) scans acknowledged meanwhile"
    wait_healthy "$service"
    wait_lb "$STATS" replicas "$server" UP
    took=$(wait_flowing 50)
    say "     $service healthy and UP in HAProxy; 50 more scans in $took s"
    done_step
done

step "stopping the scanners"
stop_scanners
done_step

step "checking that every acknowledged scan is stored once"
check_stored dc exec -T postgres psql -U pickpack -d pickpack
done_step

step "checking that the replicas tell clients behind HAProxy apart (the token endpoint's throttle)"
# 70 wrong secrets from this host through HAProxy (distinct client ids, so only the
# per-address bound of 30 a minute, per replica, applies) put this host's address over
# it on both replicas; another client behind HAProxy (a process in pickpack-b's
# container) must still be answered 401, not 429: the replicas take each client's
# address from the X-Forwarded-For that HAProxy adds, not HAProxy's own address.
host=$(for i in $(seq 1 70); do
    curl -sS --max-time 10 -o /dev/null -w '%{http_code}\n' -X POST "$BASE/oauth/token" \
        -d "grant_type=client_credentials&client_id=smoke-host-$i&client_secret=wrong"
done | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')
say "     this host, 70 wrong secrets: ${host%, }"
case "$host" in
    *" 429"*) ;;
    *) fail "70 wrong secrets from one address were never refused with 429" ;;
esac
other=$(dc exec -T pickpack-b python -c "
import urllib.error, urllib.request
for i in range(4):
    body = f'grant_type=client_credentials&client_id=smoke-other-{i}&client_secret=wrong'
    try:
        print(urllib.request.urlopen('http://haproxy:8000/oauth/token', body.encode(), 10).status)
    except urllib.error.HTTPError as exc:
        print(exc.code)
" | tr '\n' ' ') || fail "the other client's requests failed"
say "     another client behind HAProxy, 4 wrong secrets: $other"
[ "$other" = "401 401 401 401 " ] ||
    fail "another client behind HAProxy counted as this host (FORWARDED_ALLOW_IPS: HAProxy's address?)"
done_step

step "taking the profile down (docker compose --profile replicas down)"
take_down
done_step

say "PASSED in $(($(date +%s) - START)) s: both replicas restarted in turn under load, no scan failed, every acknowledged scan stored once, clients behind HAProxy told apart"
