#!/bin/sh
# DinD step 2: remove the runtime files a committed dockerd left behind.
#
# docker commit keeps /run: docker.pid, containerd.pid, sockets and the
# runtime state of containers that no longer run. After a restore, a pid in
# those files may belong to another process, and dockerd refuses to start
# ("containerd is still running"). Nothing of dockerd runs yet at this
# point (checked: the dockerd of 40-dockerd.sh's pid file), so all of it is
# stale, unless a containerd or a containerd shim of an earlier start still
# runs (40-dockerd.sh's stop had to SIGKILL dockerd, which leaves them):
# then nothing is removed, and the next dockerd takes them over through
# these files (deleted, they would run on, unseen, on the engine's data).
set -eu

# Sets live to the containerd and shims running in this container's pid
# namespace, "NAME (pid PID), ..." (an L3's processes, its own engine's
# among them, show in /proc too, in other namespaces).
find_live_runtime() {
    live=
    own_namespace=$(readlink /proc/self/ns/pid)
    for dir in /proc/[0-9]*; do
        comm=$(cat "$dir/comm" 2>/dev/null || true)
        case "$comm" in containerd | containerd-shim*) ;; *) continue ;; esac
        [ "$(readlink "$dir/ns/pid" 2>/dev/null || true)" = "$own_namespace" ] || continue
        live="${live:+$live, }$comm (pid ${dir#/proc/})"
    done
}

case "${1:-}" in
start)
    # Not stale while the dockerd of an earlier start still runs (a failed
    # stop, a resume): a second dockerd would start on the same data.
    # Its own dockerd: named so and in this pid namespace (an L3's processes
    # show in /proc too, an L3's own dockerd among them).
    pid=$(cat /run/dind-dockerd.pid 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] \
        && [ "$(readlink "/proc/$pid/ns/pid" 2>/dev/null)" = "$(readlink /proc/self/ns/pid)" ]; then
        echo "dockerd (pid $pid) of an earlier start still runs: its runtime files are not stale; stop it (kill $pid) or restart the container" >&2
        exit 1
    fi
    find_live_runtime
    if [ -n "$live" ]; then
        echo "kept /run/docker, /run/containerd and the pid files: in use by $live, left by an earlier start; the next dockerd takes them over (restart the container for a clean start)"
        exit 0
    fi
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
