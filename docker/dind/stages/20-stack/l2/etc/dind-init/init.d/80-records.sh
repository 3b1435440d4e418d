#!/bin/sh
# DinD stage 20's runtime work: write RECORDS records into the web service's
# volume, once (the marker lives on the same volume).
#
# Settings (environment): RECORDS (default 50).
set -eu
# shellcheck disable=SC1091 # written by 40-dockerd.sh: the inner engine's own socket, whatever DOCKER_HOST says
[ ! -f /run/dind-dockerd.env ] || . /run/dind-dockerd.env

compose="docker-compose -f /opt/dind-stack/compose.yml -p stack"

case "${1:-}" in
start)
    if $compose exec -T web test -e /www/.seeded; then
        echo "records already there: $($compose exec -T web sh -c 'ls /www | wc -l') files"
        exit 0
    fi
    $compose exec -T web sh -c "i=1; while [ \$i -le ${RECORDS:-50} ]; do echo \"record \$i\" > /www/record-\$i.txt; i=\$((i + 1)); done; touch /www/.seeded"
    echo "wrote ${RECORDS:-50} records"
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
