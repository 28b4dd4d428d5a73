# shellcheck shell=sh
# Shared by docker/smoke.sh, docker/smoke-replicas.sh and docker/smoke-cluster.sh
# (sourced, not run): step reporting, the failure path, waiting for health, and the
# scanners (devtools/scanners.py) that post scans while containers are restarted or killed.
# The sourcing script sets PROFILE (the compose profile; empty: the default stack alone)
# before sourcing, and calls `start_run` after.

TIMEOUT=${SMOKE_TIMEOUT:-180}
TENANT=smoke
STAMP="$(date -u +%Y%m%dT%H%M%S)-$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pickpack-smoke-${PROFILE:-default}.XXXXXX")
SCANNERS_PID=
START=$(date +%s)
STEP_START=$START
STEP="checking the tools"

say() { printf '%s smoke%s: %s\n' "$(date -u +%H:%M:%S)" "${PROFILE:+-$PROFILE}" "$*"; }
done_step() {
    now=$(date +%s)
    say "ok   $STEP ($((now - STEP_START)) s)"
    STEP_START=$now
}
step() { STEP=$1; }
fail() { say "error: $*" >&2; exit 1; }
dc() {
    if [ -n "$PROFILE" ]; then
        docker compose --profile "$PROFILE" "$@"
    else
        docker compose "$@"
    fi
}

on_exit() {
    rc=$?
    if [ -n "$SCANNERS_PID" ]; then
        kill "$SCANNERS_PID" 2>/dev/null || true
        wait "$SCANNERS_PID" 2>/dev/null || true
    fi
    if [ "$rc" = 0 ]; then
        rm -rf "$WORK"
        return
    fi
    say "FAILED while $STEP"
    dc ps -a 2>&1 | sed 's/^/    /'
    dc logs --no-color --tail 30 2>&1 | sed 's/^/    /'
    dc down >/dev/null 2>&1 || true
    if rmdir "$WORK" 2>/dev/null; then # no scanners ran
        say "stack taken down; exit 1"
    else
        say "stack taken down; the scanners' files are in $WORK; exit 1"
    fi
    exit 1
}

# Sets the failure path and checks the tools: those named, else curl and python3 (the
# scanners).
start_run() {
    trap on_exit EXIT
    [ "$#" -gt 0 ] || set -- curl python3
    for tool in "$@"; do
        command -v "$tool" >/dev/null || fail "$tool is missing"
    done
    docker info >/dev/null 2>&1 || fail "no Docker engine answers"
    docker compose version >/dev/null 2>&1 || fail "'docker compose' (the v2 plugin) is missing"
}

note_missing_images() {
    for image in "$@"; do
        docker image inspect "$image" >/dev/null 2>&1 ||
            say "note: $image is not local; compose will try to pull it (docker/local-images.sh builds a stand-in)"
    done
}

health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null; }

# Waits until every service named reports healthy (or running, without a healthcheck).
wait_healthy() {
    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        all=yes
        for service in "$@"; do
            id=$(dc ps -q "$service")
            [ -n "$id" ] || fail "service $service has no container"
            state=$(health "$id")
            case "$state" in
                healthy | running) ;;
                unhealthy | exited | dead) fail "service $service is $state" ;;
                *) all=no ;;
            esac
        done
        [ "$all" = yes ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy after ${TIMEOUT} s: $*"
        sleep 1
    done
}

# The state HAProxy gives server $3 of proxy $2 on its status page at $1 (UP, DOWN, ...).
lb_state() {
    curl -sS --max-time 5 "$1;csv" 2>/dev/null |
        awk -F, -v px="$2" -v sv="$3" '$1 == px && $2 == sv { print $18 }'
}

# Waits until HAProxy (status page $1) shows server $3 of proxy $2 as $4.
wait_lb() {
    deadline=$(($(date +%s) + TIMEOUT))
    while [ "$(lb_state "$1" "$2" "$3")" != "$4" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "HAProxy shows $2/$3 as '$(lb_state "$1" "$2" "$3")', not $4, after ${TIMEOUT} s"
        sleep 0.5
    done
}

# Scanners posting to $1 with token $2 in the background, until stop_scanners.
start_scanners() {
    : >"$WORK/acked"
    python3 -m devtools.scanners run --url "$1" --token "$2" --tenant "$TENANT" \
        --prefix "$PROFILE-$STAMP-" --out "$WORK" --clients "${SMOKE_CLIENTS:-4}" \
        >"$WORK/scanners.log" 2>&1 &
    SCANNERS_PID=$!
}

acked() { wc -l <"$WORK/acked" | tr -d ' '; }

# Waits until $1 more scans are acknowledged than now (scans are flowing); prints the
# seconds it took.
wait_flowing() {
    from=$(acked)
    began=$(date +%s.%N)
    deadline=$(($(date +%s) + TIMEOUT))
    while [ "$(acked)" -lt $((from + $1)) ]; do
        kill -0 "$SCANNERS_PID" 2>/dev/null || fail "the scanners stopped: $(cat "$WORK/scanners.log")"
        [ "$(date +%s)" -lt "$deadline" ] || fail "fewer than $1 scans acknowledged in ${TIMEOUT} s"
        sleep 0.1
    done
    awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# Stops the scanners (each finishes the scan in hand) and prints their summary; fails
# when a scan was never acknowledged.
stop_scanners() {
    kill -TERM "$SCANNERS_PID"
    code=0
    wait "$SCANNERS_PID" || code=$?
    SCANNERS_PID=
    sed 's/^/     /' "$WORK/scanners.log"
    [ "$code" = 0 ] || fail "the scanners report failed scans (exit $code)"
}

# Every acknowledged scan stored once: $@ is the psql command that reads the index.
check_stored() {
    "$@" -At -F'|' -c "SELECT event_id, count(*) FROM packing_events
        WHERE tenant = '$TENANT' AND event_id LIKE '$PROFILE-$STAMP-%' GROUP BY event_id" \
        >"$WORK/stored" || fail "reading the stored scans failed"
    code=0
    python3 -m devtools.scanners check --out "$WORK" --stored "$WORK/stored" >"$WORK/check" ||
        code=$?
    sed 's/^/     /' "$WORK/check"
    [ "$code" = 0 ] || fail "an acknowledged scan is missing or stored twice"
}

take_down() {
    dc down >/dev/null 2>&1 || fail "docker compose down failed"
    left=$(dc ps -a -q)
    [ -z "$left" ] || fail "containers left after down: $left"
}
