#!/bin/sh
# DinD step 2: remove the runtime files a committed dockerd left behind.
#
# docker commit keeps /run: docker.pid, containerd.pid, sockets and the
# runtime state of containers that no longer run. After a restore, a pid in
# those files may belong to another process, and dockerd refuses to start
# ("containerd is still running"). Nothing of dockerd runs yet at this
# point, so all of it is stale.
set -eu

case "${1:-}" in
start)
    rm -f /var/run/docker.pid /var/run/docker.sock
    rm -rf /run/docker /run/containerd /var/run/docker /var/run/containerd
    echo "stale dockerd and containerd runtime files removed"
    ;;
stop)
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
