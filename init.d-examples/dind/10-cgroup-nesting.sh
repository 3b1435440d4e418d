#!/bin/sh
# DinD step 1: make the cgroup hierarchy usable by the inner dockerd.
#
# cgroup v2: the nesting step of moby's hack/dind. A cgroup that holds
# processes cannot hand controllers to children, so every process of the
# container's root cgroup (dind-init included) moves to a child "init", and
# every controller is enabled for the children the inner dockerd creates.
# A process can land in the root cgroup between the move and the write (a
# `docker exec`), which fails the write with EBUSY: move and write again,
# a bounded number of times. Refused: a read-only cgroup2 (nothing can be
# created in it) and the host's cgroup namespace (--cgroupns=host: the root
# seen here is the host's, and its processes are not the container's).
# cgroup v1: a --privileged container has its hierarchies read-write
# already. A container that only has the capabilities (docker/dind/
# run-flags.sh, for engines that refuse --privileged) sees them read-only;
# with a private cgroup namespace each one can be mounted again read-write,
# showing only the container's own subtree.
set -eu

cgroup=/sys/fs/cgroup
tries=50

refuse() {
    echo "cgroup v2: $*" >&2
    exit 1
}

# Moves every process of the root cgroup to /init, then enables
# $controllers for the children; fails while a process is left in the root.
nest() {
    while read -r pid; do
        echo "$pid" >"$cgroup/init/cgroup.procs" 2>/dev/null || :
    done <"$cgroup/cgroup.procs"
    [ -z "$(cat "$cgroup/cgroup.procs")" ] || return 1
    [ -z "$controllers" ] || echo "$controllers" >"$cgroup/cgroup.subtree_control" 2>/dev/null
}

case "${1:-}" in
start)
    if [ -f "$cgroup/cgroup.controllers" ]; then
        # Private namespace: this process's cgroup is its root, or /init
        # when a boot before this one in the same cgroup nested already.
        own=$(sed -n 's/^0:://p' /proc/self/cgroup)
        case "$own" in
        / | /init) ;;
        *) refuse "this container shares the host's cgroup namespace (its cgroup is $own): run it with --cgroupns=private" ;;
        esac
        options=$(awk -v dir="$cgroup" '$2 == dir { print $4 }' /proc/self/mounts | tail -n1)
        case ",$options," in
        *,ro,*) refuse "$cgroup is mounted read-only, so the inner engine cannot create cgroups: run the container with --privileged" ;;
        esac
        mkdir -p "$cgroup/init"
        # "+NAME" for each controller. None (an empty cgroup.controllers: a
        # cgroup whose parent enables nothing for it): nothing is written
        # ("+" alone would be EINVAL).
        controllers=$(sed 's/[^ ][^ ]*/+&/g' <"$cgroup/cgroup.controllers")
        try=1
        until nest; do
            [ "$try" -lt "$tries" ] || refuse "processes kept arriving in the root cgroup while they were moved to /init ($tries tries): $(tr '\n' ' ' <"$cgroup/cgroup.procs")"
            try=$((try + 1))
            sleep 0.1
        done
        if [ -n "$controllers" ]; then
            echo "cgroup v2: processes moved to /init (try $try); controllers enabled for children: $(cat "$cgroup/cgroup.subtree_control")"
        else
            echo "cgroup v2: processes moved to /init (try $try); no controllers to enable for children (cgroup.controllers is empty)"
        fi
        exit 0
    fi
    awk '$3 == "cgroup" && $4 ~ /(^|,)ro(,|$)/ { print $2, $4 }' /proc/self/mounts |
    while read -r dir options; do
        options=$(echo "$options" | tr , '\n' | grep -vxE 'ro|rw' | paste -sd, -)
        umount "$dir"
        mount -t cgroup -o "rw,$options" cgroup "$dir"
        echo "cgroup v1: $dir mounted read-write"
    done
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
