#!/bin/sh
# DinD stage 30's runtime work: `pgbench -i` at scale PGBENCH_SCALE
# (100,000 rows in pgbench_accounts per unit), once; a restored boot finds
# the tables and says so (no count(*): it would scan the table on every
# restore).
#
# Settings (environment): PGBENCH_SCALE (10: 1,000,000 rows).
set -eu

psql() { docker exec pg psql -U postgres -d postgres -Atq "$@"; }

case "${1:-}" in
start)
    if [ "$(psql -c "SELECT to_regclass('pgbench_accounts') IS NOT NULL")" = t ]; then
        echo "pgbench tables there"
        exit 0
    fi
    docker exec pg pgbench -i -q -s "${PGBENCH_SCALE:-10}" -U postgres postgres 2>&1
    echo "pgbench -i -s ${PGBENCH_SCALE:-10} done"
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
