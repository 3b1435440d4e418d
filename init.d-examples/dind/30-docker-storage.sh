#!/bin/sh
# DinD step 3: /var/lib/docker on an ext4 file, loop-mounted.
#
# Why: docker commit does not keep volumes, and on the container's own
# overlay root the inner dockerd cannot use overlay2 (it falls back to vfs).
# On an ext4 file inside the container both problems go away: the file is
# committed like any other, and overlay2 works on it.
#
# Why shrink: docker commit stores a file's full apparent size, holes
# included. So the file is grown to DIND_STORAGE_SIZE at start (sparse: it
# costs nothing) and shrunk to what it uses at stop (e2fsck, resize2fs -M,
# truncate), and a commit stores about the data actually used.
#
# Settings (environment): DIND_STORAGE_FILE (/var/lib/dind-storage/docker.img),
# DIND_STORAGE_SIZE (16G; what the inner docker may grow to).
set -eu

file=${DIND_STORAGE_FILE:-/var/lib/dind-storage/docker.img}
size=${DIND_STORAGE_SIZE:-16G}
mountpoint=/var/lib/docker

megabytes() { echo $(( $(stat -c %s "$1") / 1048576 )); }

case "${1:-}" in
start)
    # New /dev/loopN nodes may be missing in a container's /dev.
    [ -e /dev/loop-control ] || mknod -m 660 /dev/loop-control c 10 237
    for n in $(seq 0 63); do
        [ -b "/dev/loop$n" ] || mknod -m 660 "/dev/loop$n" b 7 "$n"
    done
    if [ ! -f "$file" ]; then
        mkdir -p "$(dirname "$file")"
        truncate -s "$size" "$file"
        # Both the journal and the reserved growth blocks of resize_inode are
        # part of every commit: keep the journal small and drop resize_inode
        # (growing happens offline, where resize2fs does not need it).
        mkfs.ext4 -q -m 0 -J size=16 -O ^resize_inode "$file"
        echo "created $file (ext4, $size apparent, sparse)"
    else
        before=$(megabytes "$file")
        # ">": only ever grow; a smaller DIND_STORAGE_SIZE must not cut data off.
        truncate -s ">$size" "$file"
        e2fsck -f -p "$file" >/dev/null || [ $? -le 1 ]
        resize2fs "$file" >/dev/null 2>&1
        echo "grew $file from ${before} MB to $size"
    fi
    mkdir -p "$mountpoint"
    # -o loop sets autoclear: the loop device goes with the mount, even if the
    # container dies without a stop.
    mount -t ext4 -o loop "$file" "$mountpoint"
    echo "$mountpoint mounted from $file ($(df -m "$mountpoint" | awk 'NR == 2 { print $3 }') MB used)"
    ;;
stop)
    if grep -q " $mountpoint ext4 " /proc/self/mounts; then
        sync
        umount "$mountpoint"
    fi
    [ -f "$file" ] || exit 0
    e2fsck -f -p "$file" >/dev/null || [ $? -le 1 ]
    resize2fs -M "$file" >/dev/null 2>&1
    blocks=$(dumpe2fs -h "$file" 2>/dev/null | awk -F: '/^Block count/ { gsub(/ /, "", $2); print $2 }')
    block_size=$(dumpe2fs -h "$file" 2>/dev/null | awk -F: '/^Block size/ { gsub(/ /, "", $2); print $2 }')
    truncate -s $((blocks * block_size)) "$file"
    echo "$mountpoint unmounted; $file shrunk to $(megabytes "$file") MB"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
