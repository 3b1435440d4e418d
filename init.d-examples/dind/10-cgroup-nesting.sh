#!/bin/sh
# DinD step 1: make the cgroup hierarchy usable by the inner dockerd.
#
# cgroup v2: the nesting step of moby's hack/dind. A cgroup that holds
# processes cannot hand controllers to children, so every process of the
# container's root cgroup (dind-init included) moves to a child "init", and
# every controller is enabled for the children the inner dockerd creates.
# cgroup v1: a --privileged container has its hierarchies read-write
# already. A container that only has the capabilities (docker/dind/
# run-flags.sh, for engines that refuse --privileged) sees them read-only;
# with a private cgroup namespace each one can be mounted again read-write,
# showing only the container's own subtree.
set -eu

case "${1:-}" in
start)
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        mkdir -p /sys/fs/cgroup/init
        xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
        # "+NAME" for each controller. None (an empty cgroup.controllers: a
        # cgroup whose parent enables nothing for it): nothing is written
        # ("+" alone would be EINVAL).
        controllers=$(sed 's/[^ ][^ ]*/+&/g' < /sys/fs/cgroup/cgroup.controllers)
        if [ -n "$controllers" ]; then
            echo "$controllers" > /sys/fs/cgroup/cgroup.subtree_control
            echo "cgroup v2: processes moved to /init; controllers for children: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
        else
            echo "cgroup v2: processes moved to /init; no controllers to enable for children (cgroup.controllers is empty)"
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
