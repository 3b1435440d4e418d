#!/bin/sh
# Entrypoint of the PostgreSQL L3 image: initdb on an empty data directory,
# then postgres in the foreground as PID 1 (it reaps its own children and
# makes a fast shutdown on SIGINT, the image's STOPSIGNAL).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    # Trust on the local socket only: clients come through `docker exec`.
    initdb -D "$PGDATA" -U postgres --auth-local=trust --auth-host=reject -E UTF8 --locale=C >/dev/null
    echo "pg-entrypoint: initdb done in $PGDATA"
fi
exec postgres -D "$PGDATA" -c listen_addresses=''
