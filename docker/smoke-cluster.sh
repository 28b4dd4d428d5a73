#!/bin/sh
# Smoke test of compose.yaml's `cluster` profile (etcd, three PostgreSQL 15 nodes under
# Patroni, HAProxy on Patroni's /primary, the service on HAProxy) on a machine with a
# Docker engine:
#
#   docker/smoke-cluster.sh
#
# builds and starts the profile (`docker compose --profile cluster up -d --build
# pickpack-ha`), waits until every container is healthy and Patroni lists a leader and a
# synchronous standby, checks that the service is published on 127.0.0.1:8100 only, mints
# a token inside it, and runs scanners (devtools/scanners.py: distinct scans, each resent
# with its eventId until answered 200) against it while
#   1. the leader's container is killed (`docker compose kill`: SIGKILL, a crashed host),
#      then started again once another node leads and scans flow: it rejoins as a replica;
#   2. the new leader's container is stopped (`docker compose stop`: Patroni hands the
#      leader key over), then started again.
# Passed when scans flowed again after each, no scan failed (every scan answered 200
# within the scanners' give-up time), every failed request was a 503 (no 500, no reset,
# no timeout), every acknowledged scan is stored once (packing_events, read on the
# leader) and GET events through the service (a read that may lag: the synchronous
# standby serves it) shows every one of them; then `docker compose --profile cluster down`
# (named volumes are kept). On a failure it names the step, prints the containers' state
# and last log lines, takes the stack down and exits 1.
#
# It runs compose.yaml's own project (`name: pickpack`). Not part of the pytest suite; the
# base images come from a registry or docker/local-images.sh. SMOKE_TIMEOUT (seconds,
# default 180) bounds each wait; SMOKE_CLIENTS (default 4) is the number of scanners.
set -eu

cd "$(dirname "$0")/.."
PROFILE=cluster
# shellcheck source=docker/smoke-lib.sh
. docker/smoke-lib.sh
start_run
NODES="pg1 pg2 pg3"
note_missing_images python:3.11-slim debian:bookworm-slim haproxy:2.6
done_step

# "member role state" per line, as Patroni lists them, asked on a running node but $1.
members() {
    for node in $NODES; do
        [ "$node" = "${1:-}" ] && continue
        [ "$(health "$(dc ps -q "$node")")" = healthy ] || continue
        dc exec -T "$node" patronictl -c /etc/patroni.yml list -f json 2>/dev/null |
            python3 -c 'import json, sys
for m in json.load(sys.stdin):
    print(m["Member"], m["Role"].replace(" ", "-"), m["State"])' && return 0
    done
    return 1
}
leader() { members "${1:-}" | awk '$2 == "Leader" && $3 == "running" { print $1 }'; }

# Waits until a leader other than $1 runs with a streaming synchronous standby (and
# $2 members in all); prints the leader.
wait_cluster() {
    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        listed=$(members "$1" || true)
        lead=$(printf '%s\n' "$listed" | awk '$2 == "Leader" && $3 == "running" { print $1 }')
        sync=$(printf '%s\n' "$listed" | awk '$2 == "Sync-Standby" && $3 == "streaming"' | wc -l)
        count=$(printf '%s\n' "$listed" | awk 'NF == 3' | wc -l)
        if [ -n "$lead" ] && [ "$lead" != "$1" ] && [ "$sync" -ge 1 ] && [ "$count" -ge "$2" ]; then
            echo "$lead"
            return 0
        fi
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail "no leader with a synchronous standby and $2 members after ${TIMEOUT} s: $listed"
        sleep 1
    done
}

step "building and starting the profile (docker compose --profile cluster up -d --build pickpack-ha)"
out=$(mktemp)
dc up -d --build --quiet-pull pickpack-ha >"$out" 2>&1 ||
    { tail -n 40 "$out" | sed 's/^/    /'; rm -f "$out"; fail "docker compose up failed"; }
rm -f "$out"
done_step

step "waiting for etcd, pg1-pg3, pg-proxy and pickpack-ha to be healthy"
wait_healthy etcd pg1 pg2 pg3 pg-proxy pickpack-ha
LEADER=$(wait_cluster none 3)
say "     Patroni: $(members | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
done_step

step "finding the service's published port"
published=$(dc port pickpack-ha 8000) || fail "pickpack-ha publishes no port 8000"
case "$published" in
    127.0.0.1:*) ;;
    *) fail "pickpack-ha's port 8000 is published on $published, not on 127.0.0.1 only" ;;
esac
BASE="http://$published"
ready=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$BASE/ready") || fail "GET /ready failed"
[ "$ready" = 200 ] || fail "GET /ready answered $ready"
say "     $BASE/ready answers 200"
version=$(dc exec -T "$LEADER" psql -U postgres -At -c 'SHOW server_version')
patroni=$(dc exec -T "$LEADER" patroni --version)
say "     PostgreSQL $version, $patroni"
done_step

step "minting a token inside the service's container (pickpack token)"
TOKEN=$(dc exec -T pickpack-ha pickpack token --tenant "$TENANT" | tail -n 1)
case "$TOKEN" in
    *.*.*) ;;
    *) fail "pickpack token printed no JWT" ;;
esac
done_step

step "starting ${SMOKE_CLIENTS:-4} scanners"
start_scanners "$BASE" "$TOKEN"
took=$(wait_flowing 100)
say "     scans flowing: 100 acknowledged in $took s"
done_step

step "killing the leader $LEADER (docker compose kill: SIGKILL)"
dc kill "$LEADER" >/dev/null 2>&1 || fail "docker compose kill $LEADER failed"
took=$(wait_flowing 50)
say "     50 scans acknowledged again $took s after the kill"
killed=$LEADER
LEADER=$(wait_cluster "$killed" 2)
say "     $LEADER leads; Patroni: $(members "$killed" | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
done_step

step "starting $killed again: it rejoins as a replica"
dc start "$killed" >/dev/null 2>&1 || fail "docker compose start $killed failed"
wait_healthy "$killed"
LEADER=$(wait_cluster none 3)
[ "$(members | awk -v n="$killed" '$1 == n { print $3 }')" = streaming ] ||
    fail "$killed does not stream from $LEADER: $(members)"
took=$(wait_flowing 50)
say "     Patroni: $(members | tr '\n' ';' | sed 's/;$//; s/;/; /g'); 50 more scans in $took s"
done_step

step "stopping the leader $LEADER (docker compose stop: Patroni hands over)"
dc stop "$LEADER" >/dev/null 2>&1 || fail "docker compose stop $LEADER failed"
took=$(wait_flowing 50)
say "     50 scans acknowledged again $took s after the stop returned"
stopped=$LEADER
LEADER=$(wait_cluster "$stopped" 2)
say "     $LEADER leads"
dc start "$stopped" >/dev/null 2>&1 || fail "docker compose start $stopped failed"
wait_healthy "$stopped"
LEADER=$(wait_cluster none 3)
say "     $stopped started again; Patroni: $(members | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
done_step

step "stopping the scanners"
stop_scanners
# During a switch the service answers 503 (with Retry-After), never a 500 or a reset.
python3 -c 'import json, sys
kinds = set(json.load(open(sys.argv[1]))["failed_requests"])
sys.exit(0 if kinds <= {"503"} else "answers other than 503: %s" % sorted(kinds))' "$WORK/summary.json" ||
    fail "a request failed otherwise than with a 503"
done_step

step "checking that every acknowledged scan is stored once (on the leader $LEADER)"
check_stored dc exec -T "$LEADER" psql -U postgres -d pickpack
done_step

step "reading the scans back through the service (GET events, from the synchronous standby)"
feed=$(curl -sS --max-time 30 -H "Authorization: Bearer $TOKEN" \
    "$BASE/pick-pack/$TENANT/events?timestamp=2020-01-01T00:00:00Z&pageSize=20000") ||
    fail "GET events failed"
shown=$(printf '%s' "$feed" | grep -o "\"eventId\":\"$PROFILE-$STAMP-[^\"]*\"" | sort -u | wc -l)
[ "$shown" -ge "$(acked)" ] || fail "GET events shows $shown of the $(acked) acknowledged scans"
from_replica=$(curl -sS --max-time 10 "$BASE/metrics" |
    awk '/^pickpack_replica_reads_total\{outcome="replica"\}/ { print $2 }')
say "     GET events shows all $(acked) acknowledged scans; reads served by the replica: ${from_replica:-none}"
done_step

step "taking the profile down (docker compose --profile cluster down)"
take_down
done_step

say "PASSED in $(($(date +%s) - START)) s: the leader killed, then the next one stopped, under load; no scan failed, every acknowledged scan stored once"
