#!/bin/sh
# Entrypoint of the local `haproxy:2.6` stand-in that docker/local-images.sh builds from
# Debian's haproxy, with the official image's contract: options alone (`-f FILE`, `-c`)
# are given to haproxy; `haproxy ...` runs in master-worker mode (-W) in the foreground
# (-db), logging to stderr; any other command runs as given.
set -eu
if [ "${1#-}" != "${1:-}" ]; then
    set -- haproxy "$@"
fi
if [ "${1:-}" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi
exec "$@"
