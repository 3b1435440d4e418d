#!/bin/sh
# Prints the `docker run` flags an L2 (docker-in-docker) container needs on
# this engine: `--privileged` where the engine grants it; where it refuses it
# (an engine that itself runs without some capability in its bounding set,
# so runc cannot apply "all capabilities"), the closest set it does grant:
# every capability it has, no seccomp or AppArmor profile, every device
# allowed, loop-control, /dev/fuse (the inner fuse-overlayfs storage driver)
# and a private cgroup namespace whose cgroup hierarchies
# 10-cgroup-nesting.sh re-mounts read-write.
#
# usage: run-flags.sh [--lines] [PROBE_IMAGE]
#   default: one line, shell-quoted (for a Makefile recipe or `eval`)
#   --lines: one argument per line (for programs that build an argv)
#   PROBE_IMAGE: an existing image with /bin/true, run once with --privileged
#   (default $DIND_INIT_BASE_IMAGE, else dind-init/base:latest); a missing one
#   is an error, not a reason to print the weaker set.
set -eu

lines=no
[ "${1:-}" = --lines ] && { lines=yes; shift; }
image=${1:-${DIND_INIT_BASE_IMAGE:-dind-init/base:latest}}
if ! docker image inspect "$image" >/dev/null 2>&1; then
    echo "run-flags: probe image $image does not exist: build it ('make base'), or name an existing image with /bin/true: run-flags.sh IMAGE" >&2
    exit 1
fi

emit() {
    if [ "$lines" = yes ]; then
        printf '%s\n' "$@"
    else
        for arg in "$@"; do printf "'%s' " "$arg"; done
        echo
    fi
}

if docker run --rm --privileged --entrypoint /bin/true "$image" >/dev/null 2>&1; then
    emit --privileged
    exit 0
fi
# The engine's missing capabilities: those absent from its own bounding set.
bounding=$(awk '/^CapBnd/ { print $2 }' "/proc/$(pgrep -xo dockerd)/status" 2>/dev/null || echo 000001ffffffffff)
drops=""
for cap in 0:CHOWN 1:DAC_OVERRIDE 2:DAC_READ_SEARCH 3:FOWNER 4:FSETID 5:KILL 6:SETGID 7:SETUID 8:SETPCAP \
    9:LINUX_IMMUTABLE 10:NET_BIND_SERVICE 11:NET_BROADCAST 12:NET_ADMIN 13:NET_RAW 14:IPC_LOCK 15:IPC_OWNER \
    16:SYS_MODULE 17:SYS_RAWIO 18:SYS_CHROOT 19:SYS_PTRACE 20:SYS_PACCT 21:SYS_ADMIN 22:SYS_BOOT 23:SYS_NICE \
    24:SYS_RESOURCE 25:SYS_TIME 26:SYS_TTY_CONFIG 27:MKNOD 28:LEASE 29:AUDIT_WRITE 30:AUDIT_CONTROL 31:SETFCAP \
    32:MAC_OVERRIDE 33:MAC_ADMIN 34:SYSLOG 35:WAKE_ALARM 36:BLOCK_SUSPEND 37:AUDIT_READ; do
    bit=${cap%%:*}
    if [ $(( (0x$bounding >> bit) & 1 )) -eq 0 ]; then
        drops="$drops --cap-drop=${cap#*:}"
    fi
done
# shellcheck disable=SC2086 # $drops is a list of whole flags
emit --cap-add=ALL $drops --security-opt=seccomp=unconfined --security-opt=apparmor=unconfined \
    "--device-cgroup-rule=a *:* rwm" --device=/dev/loop-control --device=/dev/fuse --cgroupns=private
