#!/bin/sh
# Local stand-ins for the base images compose.yaml and the Dockerfiles name,
# `python:3.11-slim`, `postgres:16`, `haproxy:2.6` and `debian:bookworm-slim`, built from
# Debian's packages for a machine whose Docker engine reaches no image registry.
#
#   sudo docker/local-images.sh            build whichever of the tags is missing
#   sudo docker/local-images.sh --force    rebuild them all
#
# How: debootstrap a minimal Debian (the machine's own release, from the mirror the
# machine's apt sources name) once, copy it per image, install the image's packages in a
# chroot, strip apt's caches and the docs, then `docker import` with the configuration
# (ENV, ENTRYPOINT, CMD) the official images have. Needs root, debootstrap and a running
# Docker engine. Work files live in $WORKDIR (default /var/tmp/pickpack-local-images),
# outside the repository; the debootstrapped base is kept there and reused.
#
# What the stand-ins are and are not:
# - python:3.11-slim: Debian's python3.11 with venv and pip, `python` and `pip` on PATH
#   (python-is-python3), pip's "externally managed" marker removed as in the official
#   image, and the machine's own added CAs (see below). Only valid where Debian's release
#   ships Python 3.11 (bookworm does).
# - postgres:16: Debian's PostgreSQL, the release's own major version (bookworm: 15; 16 is
#   not in bookworm's archive), with docker/local-postgres-entrypoint.sh, which honours
#   POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and PGDATA like the official image's, and
#   pg_isready on PATH for compose's healthcheck. The tag says 16; `SHOW server_version`
#   tells the truth.
# - haproxy:2.6: Debian's haproxy (bookworm: 2.6), with the official image's contract: the
#   configuration at /usr/local/etc/haproxy/haproxy.cfg, an entrypoint that runs
#   `haproxy -W -db` (docker/local-haproxy-entrypoint.sh), the unprivileged user haproxy,
#   STOPSIGNAL SIGUSR1 (a soft stop: sessions finish). compose.yaml's `replicas` and
#   `cluster` profiles run it.
# - debian:bookworm-slim: the debootstrapped base itself (what the official image is too),
#   with the machine's own added CAs placed for update-ca-certificates (see below); the
#   `cluster` profile's images (docker/ha/Dockerfile) install Debian's packages on it.
# Never push these tags anywhere: they are not the images their names say.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
WORKDIR=${WORKDIR:-/var/tmp/pickpack-local-images}
PYTHON_TAG=python:3.11-slim
POSTGRES_TAG=postgres:16
HAPROXY_TAG=haproxy:2.6
LOCAL_CAS=${LOCAL_CAS:-/usr/local/share/ca-certificates}
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

say() { printf '%s local-images: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y debootstrap"
docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd first)"

# The machine's release and the first mirror its apt sources give for it (deb822 .sources
# files or one-line sources.list). DEBIAN_MIRROR overrides.
# shellcheck source=/dev/null
. /etc/os-release
SUITE=${DEBIAN_SUITE:-$VERSION_CODENAME}
machine_mirror() {
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # Stanzas are separated by blank lines; take URIs of one that lists $SUITE.
        awk -v suite="$SUITE" '
            /^[[:space:]]*$/ { if (ok && uri) { print uri; exit } ok = 0; uri = ""; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END { if (ok && uri) print uri }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2 }
                               $1 == "deb" && $2 ~ /^\[/ && $4 == suite { print $3 }' "$f"
    done
}
MIRROR=${DEBIAN_MIRROR:-$(machine_mirror | head -n 1)}
[ -n "$MIRROR" ] || die "no apt source for '$SUITE' in /etc/apt; set DEBIAN_MIRROR"
DEBIAN_TAG=debian:$SUITE-slim

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# One debootstrapped base, reused by both images and by later runs.
base() {
    if [ ! -f "$WORKDIR/base.done" ]; then
        say "debootstrap $SUITE (minbase) from $MIRROR"
        rm -rf "$WORKDIR/base"
        mkdir -p "$WORKDIR"
        debootstrap --variant=minbase "$SUITE" "$WORKDIR/base" "$MIRROR" >"$WORKDIR/debootstrap.log" 2>&1 ||
            die "debootstrap failed; see $WORKDIR/debootstrap.log"
        touch "$WORKDIR/base.done"
    fi
}

# A fresh copy of the base at $WORKDIR/$1 with packages $2... installed.
rootfs() {
    name=$1
    shift
    root="$WORKDIR/$name"
    rm -rf "$root"
    cp -a "$WORKDIR/base" "$root"
    # No daemon starts inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    if [ "$name" = postgres ]; then
        # Debian's postgresql-common creates no cluster: the entrypoint makes one in
        # PGDATA at first start, as the official image does.
        mkdir -p "$root/etc/postgresql-common"
        echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
    fi
    chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c '
        apt-get update -q &&
        apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"' \
        sh "$@" >"$WORKDIR/$name-apt.log" 2>&1 || die "apt-get install in $name failed; see $WORKDIR/$name-apt.log"
}

# What the official slim images leave out too: apt's lists and caches, docs, man pages.
slim() {
    root=$1
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/log/*.log \
        "$root"/var/cache/debconf/*-old "$root"/usr/sbin/policy-rc.d
}

import_image() {
    root=$1
    tag=$2
    shift 2
    say "docker import $tag"
    tar -C "$root" --numeric-owner -c . | docker import "$@" - "$tag" >/dev/null
    say "$tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
}

PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# `docker import` cannot set STOPSIGNAL: a one-line build on top of the import, with the
# classic builder, which needs no registry.
stopsignal() {
    printf 'FROM %s\nSTOPSIGNAL %s\n' "$1" "$2" |
        DOCKER_BUILDKIT=0 docker build -q -t "$1" - >/dev/null 2>"$WORKDIR/stopsignal.log" ||
        die "STOPSIGNAL build of $1 failed; see $WORKDIR/stopsignal.log"
}

# The machine's own added CAs (update-ca-certificates' local directory) into a root: where
# egress to PyPI passes a TLS-intercepting proxy, the machine trusts its CA and pip inside
# a build container must too, or a Dockerfile's `pip install` fails certificate
# verification. Placed only; update-ca-certificates (ca-certificates' postinst) adds them.
local_cas() {
    if ls "$LOCAL_CAS"/*.crt >/dev/null 2>&1; then
        say "adding the machine's local CAs from $LOCAL_CAS"
        mkdir -p "$1/usr/local/share/ca-certificates"
        cp "$LOCAL_CAS"/*.crt "$1/usr/local/share/ca-certificates/"
    fi
}

if [ "$FORCE" = 1 ] || ! image_exists "$PYTHON_TAG"; then
    base
    say "building $PYTHON_TAG from Debian's python3.11"
    rootfs python python3.11 python3.11-venv python3-pip python-is-python3 ca-certificates
    root="$WORKDIR/python"
    [ -x "$root/usr/bin/python3.11" ] || die "$SUITE has no python3.11; the stand-in would lie"
    # The official image's pip installs into the system Python; Debian's refuses (PEP 668).
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    # The machine's own added CAs, for the Dockerfile's `pip install .` (Debian's pip, the
    # venv's too, reads the system bundle).
    if ls "$LOCAL_CAS"/*.crt >/dev/null 2>&1; then
        local_cas "$root"
        chroot "$root" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed"
    fi
    slim "$root"
    # The Dockerfile's `ENV PATH=/opt/venv/bin:$PATH` needs PATH in the image's config.
    import_image "$root" "$PYTHON_TAG" \
        -c "ENV $PATH_ENV" -c "ENV LANG=C.UTF-8" -c 'CMD ["python3"]'
    rm -rf "$root"
else
    say "$PYTHON_TAG exists (--force rebuilds it)"
fi

if [ "$FORCE" = 1 ] || ! image_exists "$POSTGRES_TAG"; then
    base
    say "building $POSTGRES_TAG from Debian's postgresql"
    rootfs postgres postgresql postgresql-client
    root="$WORKDIR/postgres"
    major=$(ls "$root/usr/lib/postgresql")
    [ -x "$root/usr/lib/postgresql/$major/bin/postgres" ] || die "no PostgreSQL server installed"
    install -m 755 "$HERE/local-postgres-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
    # The official image's layout: data in /var/lib/postgresql/data, sockets in
    # /var/run/postgresql, both the postgres user's.
    mkdir -p "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
    chroot "$root" chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
    chmod 700 "$root/var/lib/postgresql/data"
    chmod 3777 "$root/var/run/postgresql"
    slim "$root"
    import_image "$root" "$POSTGRES_TAG" \
        -c "ENV PATH=/usr/lib/postgresql/$major/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        -c "ENV LANG=C.UTF-8" -c "ENV PGDATA=/var/lib/postgresql/data" \
        -c 'VOLUME /var/lib/postgresql/data' -c 'EXPOSE 5432' \
        -c 'ENTRYPOINT ["docker-entrypoint.sh"]' -c 'CMD ["postgres"]'
    # The official image stops PostgreSQL with SIGINT (fast shutdown: open sessions are
    # ended, not waited for).
    stopsignal "$POSTGRES_TAG" SIGINT
    rm -rf "$root"
else
    say "$POSTGRES_TAG exists (--force rebuilds it)"
fi

if [ "$FORCE" = 1 ] || ! image_exists "$HAPROXY_TAG"; then
    base
    say "building $HAPROXY_TAG from Debian's haproxy"
    rootfs haproxy haproxy
    root="$WORKDIR/haproxy"
    version=$(chroot "$root" haproxy -v | awk 'NR == 1 { print $3 }')
    case "$version" in
        2.6.*) ;;
        *) die "$SUITE's haproxy is $version, not 2.6: the stand-in would lie" ;;
    esac
    install -m 755 "$HERE/local-haproxy-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
    # The official image's layout: the configuration under /usr/local/etc/haproxy (mounted
    # by compose), the working directory /var/lib/haproxy, the user haproxy.
    mkdir -p "$root/usr/local/etc/haproxy" "$root/var/lib/haproxy"
    chroot "$root" chown haproxy:haproxy /var/lib/haproxy
    rm -f "$root/etc/haproxy/haproxy.cfg"
    slim "$root"
    import_image "$root" "$HAPROXY_TAG" \
        -c "ENV $PATH_ENV" -c "USER haproxy" -c "WORKDIR /var/lib/haproxy" \
        -c 'ENTRYPOINT ["docker-entrypoint.sh"]' \
        -c 'CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
    # The official image's: SIGUSR1 is HAProxy's soft stop (listeners close, sessions end).
    stopsignal "$HAPROXY_TAG" SIGUSR1
    rm -rf "$root"
else
    say "$HAPROXY_TAG exists (--force rebuilds it)"
fi

if [ "$FORCE" = 1 ] || ! image_exists "$DEBIAN_TAG"; then
    base
    say "building $DEBIAN_TAG from the debootstrapped base"
    root="$WORKDIR/debian"
    rm -rf "$root"
    cp -a "$WORKDIR/base" "$root"
    local_cas "$root"
    slim "$root"
    import_image "$root" "$DEBIAN_TAG" -c "ENV $PATH_ENV" -c 'CMD ["bash"]'
    rm -rf "$root"
else
    say "$DEBIAN_TAG exists (--force rebuilds it)"
fi

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' |
    grep -E "^($PYTHON_TAG|$POSTGRES_TAG|$HAPROXY_TAG|$DEBIAN_TAG) " >&2
