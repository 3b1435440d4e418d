#!/bin/sh
# Example: one-time setup, done on this script's own first start.
#
# On its first start it fills an empty data directory (here: a few
# generated pages; in real life: loading an image bundle, creating a
# database, deploying contracts). The data lives on the container's disk, so
# `docker commit` after a quiesce keeps it; the state file, committed too,
# counts this script's completed starts, so a container started from the
# committed image gets DIND_INIT_FIRST_START=0 and skips the work. (Not
# DIND_INIT_RESTORED: in a staged build, a later stage's setup run boots
# restored, and a script new in that stage must still do its work.) A start
# that fails or is killed half-way does not count: the next one seeds again.
#
# Settings (environment): SEED_DATA_DIR (default /srv/www), SEED_RECORDS (default 100).
set -eu

data_dir=${SEED_DATA_DIR:-/srv/www}
records=${SEED_RECORDS:-100}

case "${1:-}" in
start)
    if [ "${DIND_INIT_FIRST_START:-1}" != 1 ]; then
        echo "data already in $data_dir (seeded by an earlier start, boot ${DIND_INIT_BOOT:-?}, restored=${DIND_INIT_RESTORED:-0}): skipping"
        exit 0
    fi
    mkdir -p "$data_dir"
    i=1
    while [ "$i" -le "$records" ]; do
        echo "record $i of boot ${DIND_INIT_BOOT:-?}" > "$data_dir/record-$i.txt"
        i=$((i + 1))
    done
    echo "seeded at boot ${DIND_INIT_BOOT:-?}" > "$data_dir/index.html"
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
