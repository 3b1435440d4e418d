#!/bin/sh
# Example: one-time setup that a restored boot skips.
#
# On the very first boot it fills an empty data directory (here: a few
# generated pages; in real life: loading an image bundle, creating a
# database, deploying contracts). The data lives on the container's disk, so
# `docker commit` after a quiesce keeps it, and a container started from the
# committed image boots with DIND_INIT_RESTORED=1 and skips the work.
#
# Settings (environment): SEED_DATA_DIR (default /srv/www), SEED_RECORDS (default 100).
set -eu

data_dir=${SEED_DATA_DIR:-/srv/www}
records=${SEED_RECORDS:-100}

case "${1:-}" in
start)
    if [ "${DIND_INIT_RESTORED:-0}" = 1 ] || [ -e "$data_dir/.seeded" ]; then
        echo "data already in $data_dir (boot ${DIND_INIT_BOOT:-?}, restored=${DIND_INIT_RESTORED:-0}): skipping"
        exit 0
    fi
    mkdir -p "$data_dir"
    i=1
    while [ "$i" -le "$records" ]; do
        echo "record $i of boot ${DIND_INIT_BOOT:-?}" > "$data_dir/record-$i.txt"
        i=$((i + 1))
    done
    echo "seeded at boot ${DIND_INIT_BOOT:-?}" > "$data_dir/index.html"
    # Written last: a seed that was interrupted half-way runs again next boot.
    touch "$data_dir/.seeded"
    echo "seeded $records records into $data_dir"
    ;;
stop)
    # Nothing keeps running after start, so there is nothing to stop.
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
