#!/bin/sh
# Stage 30's runtime work: DEPOSIT_RECORDS more records through the service,
# once, on top of stage 20's deployment. Stage 30's setup run boots
# restored (from stage 20's commit), so "once" is this script's own first
# start (DIND_INIT_FIRST_START=1), not DIND_INIT_RESTORED=0.
#
# Settings (environment): DEPOSIT_RECORDS (default 100).
set -eu

marker=/srv/app/data/.deposited
url=http://127.0.0.1:${HTTPD_PORT:-8080}/cgi-bin/record.cgi

case "${1:-}" in
start)
    if [ "${DIND_INIT_FIRST_START:-1}" != 1 ]; then
        echo "already deposited ($(cat "$marker" 2>/dev/null)): skipping"
        exit 0
    fi
    [ -e /srv/app/data/.deployed ] || { echo "nothing deployed yet: stage 20 must come first" >&2; exit 1; }
    count=${DEPOSIT_RECORDS:-100}
    i=1
    while [ "$i" -le "$count" ]; do
        wget -q -O /dev/null --post-data "deposit $i" "$url" || { echo "deposit $i was not stored" >&2; exit 1; }
        i=$((i + 1))
    done
    echo "$count deposits at boot ${DIND_INIT_BOOT:-?}" > "$marker"
    echo "deposited $count records"
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
