#!/bin/sh
# A second Docker engine with the overlay2 storage driver, the L1 most hosts
# run, beside the machine's own engine and without touching it: its data
# root on an ext4 file system in a sparse loop file, its own network
# namespace (its docker0 and iptables rules live there, never in the host's),
# its own exec root, pidfile, containerd and unix socket, all under DIR.
#
#   start DIR [SIZE]  makes DIR/ext4.img (default 40G, sparse), mounts it on
#                     DIR/root, starts dockerd in the network namespace
#                     dind-init-NAME (NAME from DIR) and waits until it
#                     answers; prints the DOCKER_HOST to use
#                     (unix://DIR/docker.sock)
#   stop DIR          stops that dockerd (SIGTERM, then SIGKILL after 30 s),
#                     unmounts, deletes the namespace and DIR; also after a
#                     start that failed halfway
#
# Images get into it with `docker save IMAGE | DOCKER_HOST=... docker load`.
# Needs root, ip (iproute2), mkfs.ext4, losetup and the loop driver.
#
# usage: scripts/overlay2-engine.sh start|stop DIR [SIZE]
set -eu

command=${1:?usage: overlay2-engine.sh start|stop DIR [SIZE]}
dir=${2:?usage: overlay2-engine.sh start|stop DIR [SIZE]}
size=${3:-40G}
say() { echo "overlay2-engine: $*" >&2; }
die() { say "$*"; exit 1; }
netns=dind-init-$(basename "$dir")
socket=$dir/docker.sock

stop() {
    # Only a directory this script made: it removes DIR.
    [ ! -e "$dir" ] || [ -f "$dir/.overlay2-engine" ] || die "$dir was not made by overlay2-engine.sh start: not removing it"
    if [ -f "$dir/dockerd.pid" ]; then
        pid=$(cat "$dir/dockerd.pid")
        if kill "$pid" 2>/dev/null; then
            waited=0
            while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 300 ]; do
                sleep 0.1
                waited=$((waited + 1))
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # What dockerd's containers left mounted under the data root goes first.
    if mountpoint -q "$dir/root" 2>/dev/null; then
        grep -o " $dir/root/[^ ]*" /proc/self/mounts | sort -r | while read -r mount; do
            umount -l "$mount" 2>/dev/null || true
        done
        umount "$dir/root" 2>/dev/null || umount -l "$dir/root"
    fi
    ip netns delete "$netns" 2>/dev/null || true
    rm -rf "$dir"
}

case "$command" in
stop)
    stop
    ;;
start)
    [ "$(id -u)" = 0 ] || die "needs root (a loop mount, a network namespace, dockerd)"
    for tool in ip mkfs.ext4 dockerd; do
        command -v "$tool" >/dev/null || die "no $tool on PATH"
    done
    [ ! -e "$dir" ] || die "$dir exists: stop it first (overlay2-engine.sh stop $dir)"
    mkdir -p "$dir/root" "$dir/exec"
    touch "$dir/.overlay2-engine"
    trap 'say "start failed; cleaning up"; tail -n 20 "$dir/dockerd.log" >&2 2>/dev/null || true; stop' EXIT
    truncate -s "$size" "$dir/ext4.img"
    mkfs.ext4 -q -F "$dir/ext4.img"
    mount -o loop "$dir/ext4.img" "$dir/root" || die "cannot loop-mount $dir/ext4.img"
    ip netns add "$netns"
    ip netns exec "$netns" ip link set lo up
    # Not the host engine's /etc/docker/daemon.json: a config of its own.
    echo '{}' > "$dir/daemon.json"
    # nsenter --net, not `ip netns exec`: that also mounts a new /sys,
    # which hides the cgroup hierarchies dockerd needs. setsid: the engine
    # outlives this script and is not in its process group.
    nsenter "--net=/run/netns/$netns" setsid dockerd \
        --config-file "$dir/daemon.json" \
        --host "unix://$socket" \
        --data-root "$dir/root/docker" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" \
        --storage-driver overlay2 \
        --containerd-namespace "$netns" \
        --containerd-plugins-namespace "$netns-plugins" \
        >"$dir/dockerd.log" 2>&1 </dev/null &
    dockerd=$!
    waited=0
    until DOCKER_HOST=unix://$socket docker version -f '{{.Server.Version}}' >/dev/null 2>&1; do
        kill -0 "$dockerd" 2>/dev/null || die "dockerd exited before it answered (its log: $dir/dockerd.log, below)"
        [ "$waited" -lt 600 ] || die "dockerd did not answer on $socket within 60 s"
        sleep 0.1
        waited=$((waited + 1))
    done
    driver=$(DOCKER_HOST=unix://$socket docker info -f '{{.Driver}}')
    [ "$driver" = overlay2 ] || die "the engine runs the $driver driver, not overlay2"
    trap - EXIT
    say "dockerd $(cat "$dir/dockerd.pid") with overlay2 on ext4 ($dir/ext4.img), network namespace $netns"
    echo "unix://$socket"
    ;;
*)
    die "unknown command '$command': use start or stop"
    ;;
esac
