#!/bin/sh
# The image's entrypoint: apply pending migrations, then serve on 0.0.0.0:8000.
#   (no arguments)       pickpack migrate && pickpack serve --host 0.0.0.0 --port 8000
#   --workers 2 ...      the same, with these options added to `serve`
#   pickpack config ...  any other command runs as given (no migration first)
set -eu
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi
pickpack migrate
exec pickpack serve --host 0.0.0.0 --port 8000 "$@"
