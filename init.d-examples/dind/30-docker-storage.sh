#!/bin/sh
# DinD step 3: where the inner engine keeps its data, so that a `docker
# commit` of the L2 stores the files that changed, not the whole engine.
#
# DIND_STORAGE picks the mode on the first boot; it is recorded in
# /var/lib/dind-storage/mode and every later boot (a restore) keeps it:
#
#   auto            (default) fuse-overlayfs where it can make directories
#                   on the L2's file system (a probe mount), else vfs.
#   fuse-overlayfs  /var/lib/docker is plain files in the L2's own file
#                   system; the inner dockerd's fuse-overlayfs driver (needs
#                   /dev/fuse). A commit stores the changed files.
#   vfs             plain files, the vfs driver: every image layer and every
#                   container's root a full copy; works on any L1.
#   overlay-sync    /var/lib/docker on an ext4 file in the anonymous volume
#                   /var/lib/dind-storage-live (which `docker commit` skips),
#                   native overlay2; synced in from /var/lib/dind-storage/tree
#                   at start, out to it at stop (rsync: unchanged files are
#                   not rewritten, so the commit stores the changed files).
#   loop            the fallback: an ext4 file, loop-mounted, overlay2. It is
#                   committed whole at every quiesce (shrunk to what it uses);
#                   while running it lives in the volume, so a commit without
#                   a quiesce never stores its 16 GiB apparent size.
#
# Writes /run/dind-storage.env (DIND_STORAGE_DRIVER=...) for 40-dockerd.sh.
#
# Settings (environment): DIND_STORAGE (see above), DIND_STORAGE_SIZE (16G:
# the apparent size of the ext4 file of overlay-sync and loop).
set -eu

state=/var/lib/dind-storage
live=/var/lib/dind-storage-live
mountpoint=/var/lib/docker
size=${DIND_STORAGE_SIZE:-16G}
default_mode=auto

say() { echo "$*"; }
die() { echo "$*" >&2; exit 1; }
megabytes() { echo $(( $(stat -c %s "$1") / 1048576 )); }
# df, not du: du would walk every file, on the restore's critical path.
used_mb() { df -m "$1" | awk 'NR == 2 { print $3 }'; }

# Whether fuse-overlayfs can make a directory on the L2's own file system.
# It cannot where that file system is itself fuse-overlayfs (an L1 engine
# with the fuse-overlayfs storage driver): the nested one marks every new
# directory opaque with an xattr the outer one refuses (EPERM), so an L3
# whose image lacks a directory it needs (/dev/pts, /etc, ...) fails to
# start. So `auto` takes vfs there; fuse-overlayfs asked for by name still
# runs (with a warning): L3 images that have every directory they need
# (Debian root file systems) work.
fuse_overlayfs_works() {
    probe=$(mktemp -d "$state/probe.XXXXXX")
    mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
    works=no
    if fuse-overlayfs -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
        mkdir "$probe/merged/directory" 2>/dev/null && works=yes
        umount "$probe/merged"
    fi
    rm -rf "$probe"
    [ "$works" = yes ]
}

# The mode of this image's data: recorded, or (first boot) DIND_STORAGE.
# A file system committed by the old loop-only script has docker.img and no record.
storage_mode() {
    recorded=$(cat "$state/mode" 2>/dev/null || true)
    [ -n "$recorded" ] || { [ -f "$state/docker.img" ] && recorded=loop; } || true
    requested=${DIND_STORAGE:-}
    if [ -n "$recorded" ] && [ -n "$requested" ] && [ "$requested" != auto ] && [ "$recorded" != "$requested" ]; then
        die "DIND_STORAGE=$requested, but this image's inner engine data is in mode '$recorded': unset DIND_STORAGE or set it to $recorded (a mode is chosen once, at the first boot)"
    fi
    mode=${recorded:-${requested:-$default_mode}}
    case "$mode" in
    auto | fuse-overlayfs | overlay-sync | vfs | loop) ;;
    *) die "unknown DIND_STORAGE '$mode': use auto, fuse-overlayfs, vfs, overlay-sync or loop" ;;
    esac
    mkdir -p "$state"
    if [ "$mode" = auto ]; then
        [ -c /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229
        if fuse_overlayfs_works; then mode=fuse-overlayfs; else mode=vfs; fi
        echo "auto: storage mode $mode (fuse-overlayfs $([ "$mode" = vfs ] && echo cannot || echo can) make directories here)" >&2
    fi
    [ -n "$recorded" ] || echo "$mode" > "$state/mode"
    echo "$mode"
}

# The anonymous volume that holds the live ext4 file (declared by the L2
# image); without it the file would be part of every commit.
require_volume() {
    grep -q " $live " /proc/self/mounts \
        || die "$live is not a volume: the L2 image must declare VOLUME $live (docker/dind/l2/Dockerfile), or run with -v $live"
}

loop_nodes() {
    # New /dev/loopN nodes may be missing in a container's /dev.
    [ -e /dev/loop-control ] || mknod -m 660 /dev/loop-control c 10 237
    for n in $(seq 0 63); do
        [ -b "/dev/loop$n" ] || mknod -m 660 "/dev/loop$n" b 7 "$n"
    done
}

# A new sparse ext4 file. The journal and resize_inode's reserved blocks are
# part of the file: a small journal, no resize_inode (growing is offline).
new_ext4() {
    truncate -s "$size" "$1"
    mkfs.ext4 -q -m 0 -J size=16 -O ^resize_inode -E lazy_itable_init=1,lazy_journal_init=1 "$1"
}

mount_ext4() {
    mkdir -p "$mountpoint"
    # -o loop sets autoclear: the loop device goes with the mount, even if the
    # container dies without a stop.
    mount -t ext4 -o loop,noatime "$1" "$mountpoint"
}

unmount_ext4() {
    if grep -q " $mountpoint ext4 " /proc/self/mounts; then
        umount "$mountpoint"
    fi
}

start_loop() {
    require_volume
    loop_nodes
    file=$live/docker.img
    rm -f "$file"
    if [ -f "$state/docker.img" ]; then
        # The committed file stays untouched (a commit without quiesce then
        # stores nothing of it); the live copy is grown to the full size.
        cp --sparse=always "$state/docker.img" "$file"
        truncate -s ">$size" "$file"
        e2fsck -f -p "$file" >/dev/null || [ $? -le 1 ]
        resize2fs "$file" >/dev/null 2>&1
        say "copied $state/docker.img ($(megabytes "$state/docker.img") MB) to the volume, grown to $size"
    else
        new_ext4 "$file"
        say "created $file (ext4, $size apparent, sparse)"
    fi
    mount_ext4 "$file"
}

stop_loop() {
    unmount_ext4
    file=$live/docker.img
    [ -f "$file" ] || exit 0
    e2fsck -f -p "$file" >/dev/null || [ $? -le 1 ]
    resize2fs -M "$file" >/dev/null 2>&1
    blocks=$(dumpe2fs -h "$file" 2>/dev/null | awk -F: '/^Block count/ { gsub(/ /, "", $2); print $2 }')
    block_size=$(dumpe2fs -h "$file" 2>/dev/null | awk -F: '/^Block size/ { gsub(/ /, "", $2); print $2 }')
    truncate -s $((blocks * block_size)) "$file"
    # The committed copy is replaced by a new file (rename), never written in place.
    cp --sparse=always "$file" "$state/docker.img.new"
    mv "$state/docker.img.new" "$state/docker.img"
    rm -f "$file"
    say "$mountpoint unmounted; $state/docker.img shrunk to $(megabytes "$state/docker.img") MB"
}

# The tree holds plain files; overlay2's own metadata cannot be stored as it
# is: the L1's overlay refuses trusted.overlay.* xattrs and takes a 0/0
# character device for its own whiteout, and `docker commit` keeps no xattr
# but security.capability. So devices (overlay2's whiteouts) and the
# trusted.overlay.opaque/redirect xattrs go to two small manifest files
# beside the tree, and are made again at sync in.
# rsync skips files whose size and mtime match: an unchanged file is never
# rewritten (so never copied up by the L1's overlay, never committed again).
rsync_tree() {
    rsync -aHX --numeric-ids --delete --no-devices --no-specials --filter='-x trusted.*' "$1/" "$2/"
}

sync_out() {
    (cd "$1" && { find . -type c -exec stat -c 'c %t %T %u %g %a %n' {} +
        find . -type b -exec stat -c 'b %t %T %u %g %a %n' {} +; } > "$state/overlay-devices.new")
    (cd "$1" && getfattr -R -h -m '^trusted\.overlay\.(opaque|redirect)$' -d . > "$state/overlay-xattrs.new" 2>/dev/null || true)
    rsync_tree "$1" "$2"
    mv "$state/overlay-devices.new" "$state/overlay-devices"
    mv "$state/overlay-xattrs.new" "$state/overlay-xattrs"
}

sync_in() {
    rsync_tree "$1" "$2"
    [ -f "$state/overlay-devices" ] && while read -r type major minor uid gid mode path; do
        mknod "$2/$path" "$type" $((0x$major)) $((0x$minor))
        chown -h "$uid:$gid" "$2/$path"
        chmod "$mode" "$2/$path"
    done < "$state/overlay-devices"
    [ -s "$state/overlay-xattrs" ] && (cd "$2" && setfattr -h --restore="$state/overlay-xattrs")
    true
}

start_overlay_sync() {
    require_volume
    loop_nodes
    file=$live/docker.img
    rm -f "$file"
    new_ext4 "$file"
    mount_ext4 "$file"
    mkdir -p "$state/tree"
    sync_in "$state/tree" "$mountpoint"
    say "synced $state/tree into $mountpoint ($(used_mb "$mountpoint") MB) on a new ext4 file in the volume"
}

stop_overlay_sync() {
    grep -q " $mountpoint ext4 " /proc/self/mounts || exit 0
    mkdir -p "$state/tree"
    used=$(used_mb "$mountpoint")
    sync_out "$mountpoint" "$state/tree"
    unmount_ext4
    rm -f "$live/docker.img"
    say "$mountpoint ($used MB used) synced out to $state/tree and unmounted"
}

# dockerd renames /var/lib/docker/runtimes and /var/lib/docker/tmp at start
# (to delete them in the background). In a plain-files mode, after a restore
# they are directories of the image's lower layer, which the L1's overlay
# cannot rename ("invalid cross-device link": fatal for runtimes). Both are
# scratch: removed at stop (so not committed) and again at start (a commit
# without quiesce has them).
remove_scratch() {
    rm -rf "$mountpoint/runtimes" "$mountpoint/tmp"
}

case "${1:-}" in
start)
    mode=$(storage_mode)
    case "$mode" in
    fuse-overlayfs)
        [ -c /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229
        fuse_overlayfs_works || echo "warning: fuse-overlayfs cannot make a directory on this L2's file system (the L1 engine's storage driver is fuse-overlayfs? it refuses the nested one's opaque xattr): L3 containers whose image lacks a directory they need fail to start; DIND_STORAGE=vfs or overlay-sync work here" >&2
        mkdir -p "$mountpoint"
        remove_scratch
        driver=fuse-overlayfs
        say "$mountpoint: plain files, fuse-overlayfs driver"
        ;;
    vfs)
        mkdir -p "$mountpoint"
        remove_scratch
        driver=vfs
        say "$mountpoint: plain files, vfs driver"
        ;;
    overlay-sync) start_overlay_sync; driver=overlay2 ;;
    loop) start_loop; driver=overlay2 ;;
    esac
    printf 'DIND_STORAGE=%s\nDIND_STORAGE_DRIVER=%s\n' "$mode" "$driver" > /run/dind-storage.env
    say "storage mode $mode"
    ;;
stop)
    mode=$(storage_mode)
    case "$mode" in
    fuse-overlayfs | vfs)
        remove_scratch
        say "$mountpoint: plain files; dockerd's scratch directories removed"
        ;;
    overlay-sync) stop_overlay_sync ;;
    loop) stop_loop ;;
    esac
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
