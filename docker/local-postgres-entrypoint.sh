#!/bin/sh
# Entrypoint of the local `postgres:16` stand-in that docker/local-images.sh builds from
# Debian's PostgreSQL. It keeps the official image's contract for what compose.yaml and
# the tests use:
#   POSTGRES_USER      superuser to create (default postgres)
#   POSTGRES_PASSWORD  its password; required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_DB        database to create (default: POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP clients (default scram-sha-256)
#   PGDATA             data directory (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sql, *.sh  run once, after the first initdb
# and `docker run IMAGE -c key=value` passes options to postgres. Initialisation happens
# only when PGDATA holds no cluster; later starts reuse it and ignore the variables.
set -eu

PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
if [ "${1#-}" != "${1:-}" ] || [ "$#" = 0 ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi

log() { echo "entrypoint: $*" >&2; }

# As root: make the directories the postgres user's, then run this script again as it.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
        log "POSTGRES_PASSWORD is not set: set it, or POSTGRES_HOST_AUTH_METHOD=trust"
        exit 1
    fi
    log "initdb for superuser '$user' in $PGDATA"
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    # Local (socket) connections trust, as in the official image: the healthcheck's
    # pg_isready and `docker exec ... psql` need no password.
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host="$method" --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all $method" >>"$PGDATA/pg_hba.conf"

    # A server on the socket only, to create the database and run the init scripts.
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
    if [ "$db" != postgres ]; then
        log "creating database '$db'"
        psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -q \
            -c "CREATE DATABASE \"$db\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) log "running $f"; psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -q -f "$f" ;;
            *.sh)
                log "running $f"
                # shellcheck source=/dev/null
                . "$f"
                ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    log "initialised; starting PostgreSQL"
fi

exec "$@"
