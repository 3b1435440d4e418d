#!/bin/sh
# Stage 20's runtime work: "deploy" by writing records through the service,
# one HTTP request each, as a test environment deploys contracts. Done once,
# on this script's own first start in this state (DIND_INIT_FIRST_START=1;
# the state file is committed with the container): later boots, and the
# setup runs of later stages, skip it. /srv/app/data/.deployed says what
# was deployed, for the next stage and for people.
#
# Settings (environment): DEPLOY_RECORDS (default 4000).
set -eu

marker=/srv/app/data/.deployed
url=http://127.0.0.1:${HTTPD_PORT:-8080}/cgi-bin/record.cgi

case "${1:-}" in
start)
    if [ "${DIND_INIT_FIRST_START:-1}" != 1 ]; then
        echo "already deployed ($(cat "$marker" 2>/dev/null)): skipping (start $((DIND_INIT_STARTS + 1)), boot ${DIND_INIT_BOOT:-?}, restored=${DIND_INIT_RESTORED:-0})"
        exit 0
    fi
    count=${DEPLOY_RECORDS:-4000}
    began=$(date +%s)
    i=1
    while [ "$i" -le "$count" ]; do
        wget -q -O /dev/null --post-data "deploy $i $(echo "contract-$i" | md5sum | cut -c1-32)" "$url" \
            || { echo "record $i was not stored" >&2; exit 1; }
        i=$((i + 1))
    done
    echo "$count records at boot ${DIND_INIT_BOOT:-?}" > "$marker"
    echo "deployed $count records in $(( $(date +%s) - began ))s"
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
