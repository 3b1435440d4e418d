#!/bin/sh
# DinD stage 30's runtime work: `pgbench -i` at scale PGBENCH_SCALE
# (100,000 rows in pgbench_accounts per unit), once: the marker table
# dind_pgbench_done is made when it finished, and a later boot that finds
# it says so (no count(*): it would scan the table on every restore). A
# setup cut short (pgbench killed, a start timeout) leaves no marker, so the
# next start runs it again.
#
# Settings (environment): PGBENCH_SCALE (10: 1,000,000 rows).
set -eu
# shellcheck disable=SC1091 # written by 40-dockerd.sh: the inner engine's own socket, whatever DOCKER_HOST says
[ ! -f /run/dind-dockerd.env ] || . /run/dind-dockerd.env

psql() { docker exec pg psql -U postgres -d postgres -Atq "$@"; }

case "${1:-}" in
start)
    # The marker table, not the pgbench tables: an interrupted `pgbench -i`
    # leaves tables with part of the rows (it drops and refills them when run again).
    if [ "$(psql -c "SELECT to_regclass('dind_pgbench_done') IS NOT NULL")" = t ]; then
        echo "pgbench tables there"
        exit 0
    fi
    docker exec pg pgbench -i -q -s "${PGBENCH_SCALE:-10}" -U postgres postgres 2>&1
    psql -c "CREATE TABLE dind_pgbench_done ()"
    echo "pgbench -i -s ${PGBENCH_SCALE:-10} done"
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
