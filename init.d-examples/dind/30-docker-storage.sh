#!/bin/sh
# DinD step 3: where the inner engine keeps its data, so that a `docker
# commit` of the L2 stores the files that changed, not the whole engine.
#
# DIND_STORAGE picks the mode on the first boot; it is recorded in
# /var/lib/dind-storage/mode and every later boot (a restore) keeps it:
#
#   auto            (default) fuse-overlayfs where it can make directories
#                   on the L2's file system (a probe mount), else vfs.
#   fuse-overlayfs  the data root is plain files in the L2's own file
#                   system; the inner dockerd's fuse-overlayfs driver (needs
#                   /dev/fuse). A commit stores the changed files.
#   vfs             plain files, the vfs driver: every image layer and every
#                   container's root a full copy; works on any L1.
#   overlay-sync    /var/lib/docker on an ext4 file in a volume (which
#                   `docker commit` skips), native overlay2; synced in from
#                   /var/lib/dind-storage/tree at start, out to it at stop
#                   (rsync: unchanged files are not rewritten, so the commit
#                   stores the changed files).
#   loop            the fallback: an ext4 file, loop-mounted, overlay2. It is
#                   committed whole at every quiesce (shrunk to what it uses);
#                   while running it lives in a volume, so a commit without a
#                   quiesce never stores its 16 GiB apparent size.
#
# Where a commit stores the data: `docker commit` skips volumes and bind
# mounts, and the official docker:dind image declares VOLUME /var/lib/docker.
# So the plain-file modes keep the data root in /var/lib/dind-storage/docker
# (dockerd --data-root) when /var/lib/docker is on a volume or bind mount (at
# it or above it, per /proc/self/mountinfo); the ext4 modes keep their live
# file in the volume /var/lib/dind-storage-live, or (no such volume) in the
# one at /var/lib/docker. One log line says where the data lives and why.
# Where /var/lib/dind-storage itself is not committed, the start says so and
# every stop fails with the reason: the quiesce is then not commit-safe.
#
# The ext4 modes after a failed or interrupted stop (a busy mount, a full
# disk, a stop timeout, `docker kill`): the live file is removed only after
# its data was saved completely and renamed into place, so a start that finds
# it (still mounted, or not) runs on it, the newest state; overlay-sync's
# saved tree is marked incomplete while a sync out runs, and a start with an
# incomplete tree and no live file refuses to run.
#
# Writes /run/dind-storage.env (DIND_STORAGE, DIND_STORAGE_DRIVER,
# DIND_DOCKER_ROOT) for 40-dockerd.sh and 50-image-bundle.sh.
#
# Runs under busybox sh and its tools (Alpine) as under Debian's.
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
used_mb() { df -Pm "$1" | awk 'NR == 2 { print $3 }'; }

# A size with an optional k/M/G/T suffix in bytes (busybox truncate has no ">").
bytes() {
    case "$1" in
    *[kK]) echo $(( ${1%?} * 1024 )) ;;
    *[mM]) echo $(( ${1%?} * 1048576 )) ;;
    *[gG]) echo $(( ${1%?} * 1073741824 )) ;;
    *[tT]) echo $(( ${1%?} * 1099511627776 )) ;;
    *) echo $(( $1 )) ;;
    esac
}

# The mount point of a mount other than the container's root file system
# at PATH or above it (a volume, a bind mount, a tmpfs), whose files `docker
# commit` does not store; nothing when PATH is committed. Our own loop mount
# at $mountpoint is left out (its data is saved by the stop).
uncommitted_mount() {
    awk -v path="$1" -v ours="$mountpoint" '
        {
            for (i = 7; $i != "-"; i++) {}
            point = $5; source = $(i + 2)
            if (point == ours && source ~ /^\/dev\/loop/) next
            if (point != "/" && (path == point || index(path, point "/") == 1) && length(point) > length(found)) found = point
        }
        END { if (found != "") print found }' /proc/self/mountinfo
}

# Why a commit cannot store this L2's inner engine data (empty: it can).
commit_blocker() {
    state_mount=$(uncommitted_mount "$state")
    [ -z "$state_mount" ] || echo "$state is on the volume or bind mount $state_mount, which docker commit skips: the inner engine's data cannot be committed; do not declare a volume or mount there"
}

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

# The plain-file modes' data root: /var/lib/docker where a commit stores it,
# else $state/docker. Sets data_root and where (the log line's reason).
plain_data_root() {
    docker_mount=$(uncommitted_mount "$mountpoint")
    if [ -z "$docker_mount" ]; then
        data_root=$mountpoint
        where="in the container's own file system, so in every commit"
        return
    fi
    data_root=$state/docker
    where="not $mountpoint: it is on the volume or bind mount $docker_mount, which docker commit skips"
    # An image committed before the volume was declared: its data was copied
    # into the new volume by the engine; move it where a commit stores it.
    if [ ! -d "$data_root" ] && [ -n "$(ls -A "$mountpoint" 2>/dev/null)" ]; then
        cp -a "$mountpoint" "$data_root.new"
        mv "$data_root.new" "$data_root"
        where="$where (its data copied here)"
    fi
    mkdir -p "$data_root"
}

# The volume that holds the live ext4 file: $live when it is one (the
# project's L2 image declares it), else the volume at /var/lib/docker
# (docker:dind declares that one), bind-mounted at $live before the ext4
# file is mounted over it. Without either the file would be in every commit.
require_volume() {
    [ -z "$(uncommitted_mount "$live")" ] || return 0
    if [ "$(uncommitted_mount "$mountpoint")" = "$mountpoint" ]; then
        mkdir -p "$mountpoint/.dind-storage-live" "$live"
        mount --bind "$mountpoint/.dind-storage-live" "$live"
        return 0
    fi
    die "$live is not a volume: the L2 image must declare VOLUME $live (docker/dind/l2/Dockerfile) or VOLUME $mountpoint, or run with -v $live"
}

loop_nodes() {
    # New /dev/loopN nodes may be missing in a container's /dev: up to the
    # next free one the kernel names (loop-control), and some beyond it for
    # L2s that take devices at the same moment.
    [ -e /dev/loop-control ] || mknod -m 660 /dev/loop-control c 10 237
    free=$(losetup -f 2>/dev/null || echo /dev/loop0)
    free=${free#/dev/loop}
    case "$free" in '' | *[!0-9]*) free=0 ;; esac
    last=$((free + 16))
    [ "$last" -ge 63 ] || last=63
    for n in $(seq 0 "$last"); do
        [ -b "/dev/loop$n" ] || mknod -m 660 "/dev/loop$n" b 7 "$n"
    done
}

# A new sparse ext4 file. The journal and resize_inode's reserved blocks are
# part of the file: a small journal, no resize_inode (growing is offline).
new_ext4() {
    rm -f "$1"
    truncate -s "$(bytes "$size")" "$1"
    mkfs.ext4 -q -m 0 -J size=16 -O ^resize_inode -E lazy_itable_init=1,lazy_journal_init=1 "$1"
}

# A copy of an unmounted or read-only ext4 file that holds only its used
# blocks, as a sparse file (busybox cp has no --sparse).
copy_ext4() {
    rm -f "$2"
    e2image -ra "$1" "$2" 2>/dev/null
}

fsck_ext4() {
    e2fsck -f -p "$1" >/dev/null || [ $? -le 1 ]
}

mounted() {
    awk -v point="$mountpoint" '{ for (i = 7; $i != "-"; i++) {} } $5 == point && $(i + 2) ~ /^\/dev\/loop/ { found = 1 } END { exit !found }' /proc/self/mountinfo
}

mount_ext4() {
    mkdir -p "$mountpoint"
    # -o loop sets autoclear: the loop device goes with the mount, even if the
    # container dies without a stop.
    # A few tries: busybox's mount takes the free device loop-control names
    # and gives up when another L2 took it first.
    for _ in 1 2 3 4 5; do
        mount -t ext4 -o loop,noatime "$1" "$mountpoint" && return 0
        sleep 0.2
    done
    die "mounting $1 on $mountpoint failed (no free loop device? see losetup -a on the host)"
}

# Read-only first: that fails while anything still writes (dockerd not
# stopped), and the data saved next is what the file system holds on disk.
freeze_ext4() {
    mount -o remount,ro "$mountpoint" \
        || die "$mountpoint is still open for writing (is dockerd stopped?): its data is not saved; the live file stays in $live"
}

# After the data was saved: unmount, lazily when a process (a `docker exec`
# shell) still sits in it; the saved copy is complete either way.
release_ext4() {
    if mounted; then
        umount "$mountpoint" 2>/dev/null || { umount -l "$mountpoint"; say "$mountpoint was busy: detached lazily (the saved copy is complete)"; }
    fi
    rm -f "$live/docker.img"
}

# The ext4 modes' start when the last stop did not finish: a live file that
# is still mounted or still in the volume holds the newest state (it is
# removed only after a complete save). Returns 1 when there is none.
resume_live_file() {
    file=$live/docker.img
    if mounted; then
        mount -o remount,rw "$mountpoint"
        say "inner engine data: $mountpoint still mounted from $file (the last stop did not finish): running on it, the newest state; the saved copy in $state is older"
        return 0
    fi
    [ -f "$file" ] || return 1
    fsck_ext4 "$file"
    mount_ext4 "$file"
    say "inner engine data: $file was left by a stop or boot that did not finish: running on it, the newest state; the saved copy in $state is older"
}

start_loop() {
    require_volume
    loop_nodes
    rm -f "$state/docker.img.new" "$live/docker.img.new"
    resume_live_file && return 0
    file=$live/docker.img
    if [ -f "$state/docker.img" ]; then
        # The committed file stays untouched (a commit without quiesce then
        # stores nothing of it); the live copy is grown to the full size, and
        # gets its name only when complete.
        copy_ext4 "$state/docker.img" "$file.new" || die "copying $state/docker.img to $file.new failed (the volume full?)"
        [ "$(stat -c %s "$file.new")" -ge "$(bytes "$size")" ] || truncate -s "$(bytes "$size")" "$file.new"
        fsck_ext4 "$file.new"
        resize2fs "$file.new" >/dev/null 2>&1
        mv "$file.new" "$file"
        say "copied $state/docker.img ($(megabytes "$state/docker.img") MB) to the volume, grown to $size"
    else
        new_ext4 "$file.new"
        mv "$file.new" "$file"
        say "created $file (ext4, $size apparent, sparse)"
    fi
    mount_ext4 "$file"
    say "inner engine data: $mountpoint on the ext4 file $file (in a volume: not committed), copied whole to $state/docker.img (committed) at every stop"
}

# The live file stays untouched until the shrunk copy is in place: a stop
# that fails or is killed leaves it for the next start.
stop_loop() {
    file=$live/docker.img
    if mounted; then
        freeze_ext4
    elif [ ! -f "$file" ]; then
        return 0
    fi
    say "saving $file to $state/docker.img"
    new=$state/docker.img.new
    copy_ext4 "$file" "$new" || die "copying $file to $new failed (disk full?): the saved copy is the previous one; the live file stays for the next start"
    fsck_ext4 "$new"
    resize2fs -M "$new" >/dev/null 2>&1
    blocks=$(dumpe2fs -h "$new" 2>/dev/null | awk -F: '/^Block count/ { gsub(/ /, "", $2); print $2 }')
    block_size=$(dumpe2fs -h "$new" 2>/dev/null | awk -F: '/^Block size/ { gsub(/ /, "", $2); print $2 }')
    truncate -s $((blocks * block_size)) "$new"
    # The committed copy is replaced by a new file (rename), never written in place.
    mv "$new" "$state/docker.img"
    release_ext4
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
    rsync -aHXx --numeric-ids --delete --no-devices --no-specials --filter='-x trusted.*' "$1/" "$2/"
}

# The device manifest, overlay-devices.nul: one record per device, each
# "TYPE MAJOR MINOR UID GID MODE PATH" ended by a NUL, so a PATH may hold
# any byte but NUL (a newline, blanks at either end, backslashes); read back
# with xargs -0 (busybox sh's read cannot split at NUL). An image committed
# by an older script has overlay-devices instead: the same records ended by
# newlines, read by turning them into NULs (a line that is not a record, the
# rest of a name with a newline, which that format could not hold, is refused).
# The opaque-directory manifest, overlay-xattrs, is getfattr's dump, whose
# "# file:" lines escape a newline and a backslash in a name as \ooo (setfattr
# --restore reads them back).
devices=overlay-devices.nul
legacy_devices=overlay-devices

# The records of the devices under the current directory (this file system only).
device_records() {
    for type in c b; do
        find . -xdev -type "$type" -exec sh -c '
            type=$1
            shift
            # One line per path, in their order (a name holds no field).
            fields=$(stat -c "%t %T %u %g %a" "$@") || exit 1
            printf "%s\n" "$fields" | for path; do
                read -r major minor uid gid mode || exit 1
                printf "%s %s %s %s %s %s %s\0" "$type" "$major" "$minor" "$uid" "$gid" "$mode" "$path"
            done' sh "$type" {} +
    done
}

# For each record on stdin: checks it, then runs ACTION (shell code) in a
# `sh -c` with $root (ROOT), $path (ROOT/PATH) and the record's six fields
# as "$@". Fails when a record is not one or an action fails.
each_device_record() {
    # shellcheck disable=SC2016 # expanded by the inner sh
    xargs -0 -r sh -c '
        set -euf
        root=$1 action=$2
        shift 2
        for record; do
            case "$record" in
            [cb]" "*" "*" "*" "*" "*" ./"*) ;;
            *) echo "not a device record: $record" >&2; exit 1 ;;
            esac
            rest=${record#* * * * * * }
            # shellcheck disable=SC2086 # the six fields before the path
            set -- ${record%"$rest"}
            path=$root/$rest
            eval "$action"
        done' sh "$1" "$2"
}

# Marks the tree incomplete while it is written; only a finished sync out
# marks it complete again (the manifests renamed into place first).
sync_out() {
    echo incomplete > "$state/tree-state"
    (cd "$1" && device_records > "$state/$devices.new") \
        || die "listing the devices (overlay2's whiteouts) of $1 failed: its data is not saved; the live file stays for the next start"
    (cd "$1" && getfattr -R -h -m '^trusted\.overlay\.(opaque|redirect)$' -d . > "$state/overlay-xattrs.new") \
        || die "getfattr failed (the attr package?): the opaque directories could not be saved"
    rsync_tree "$1" "$2" || die "rsync from $1 to $2 failed (disk full?): the saved tree is incomplete; the live file stays for the next start"
    # A path that became a whiteout (a device, which rsync skips) since the last sync.
    # shellcheck disable=SC2016 # the action is expanded by each_device_record's sh
    each_device_record "$2" 'rm -rf "$path"' < "$state/$devices.new" \
        || die "removing the tree's copies of new whiteouts in $2 failed: the saved tree is incomplete; the live file stays for the next start"
    mv "$state/$devices.new" "$state/$devices"
    rm -f "$state/$legacy_devices"
    mv "$state/overlay-xattrs.new" "$state/overlay-xattrs"
    sync
    echo complete > "$state/tree-state"
}

sync_in() {
    rsync_tree "$1" "$2"
    # shellcheck disable=SC2016 # expanded by each_device_record's sh
    make_device='rm -rf "$path"; mknod "$path" "$1" $((0x$2)) $((0x$3)); chown -h "$4:$5" "$path"; chmod "$6" "$path"'
    failed="making the whiteouts of the device manifest again in $2 failed: the start cannot rebuild the engine's data from $state/tree"
    if [ -f "$state/$devices" ]; then
        each_device_record "$2" "$make_device" < "$state/$devices" || die "$failed"
    elif [ -f "$state/$legacy_devices" ]; then
        ! grep -qvE '^[cb] [0-9a-f]+ [0-9a-f]+ [0-9]+ [0-9]+ [0-7]+ \./' "$state/$legacy_devices" \
            || die "$state/$legacy_devices (the device manifest of an older 30-docker-storage.sh) has a line that is not a device record: a whiteout's name had a newline, which that format cannot hold, so the engine's data cannot be rebuilt from this image; restore the image committed before it"
        tr '\n' '\0' < "$state/$legacy_devices" | each_device_record "$2" "$make_device" || die "$failed"
    fi
    [ -s "$state/overlay-xattrs" ] && (cd "$2" && setfattr -h --restore="$state/overlay-xattrs")
    true
}

start_overlay_sync() {
    require_volume
    loop_nodes
    rm -f "$state/$devices.new" "$state/overlay-xattrs.new" "$live/docker.img.new"
    resume_live_file && return 0
    [ "$(cat "$state/tree-state" 2>/dev/null || echo complete)" = complete ] \
        || die "the saved tree $state/tree is incomplete (a stop was interrupted while syncing it) and there is no live file to run on: start from the image committed before, not from this container"
    file=$live/docker.img
    new_ext4 "$file.new"
    mount_ext4 "$file.new"
    mkdir -p "$state/tree"
    sync_in "$state/tree" "$mountpoint"
    # Its name only once synced in: a start killed half-way leaves no live file.
    mv "$file.new" "$file"
    say "synced $state/tree into $mountpoint ($(used_mb "$mountpoint") MB) on a new ext4 file in the volume"
    say "inner engine data: $mountpoint on the ext4 file $file (in a volume: not committed), synced out to $state/tree (committed) at every stop"
}

stop_overlay_sync() {
    if ! mounted; then
        [ -f "$live/docker.img" ] || return 0
        mount_ext4 "$live/docker.img"
    fi
    freeze_ext4
    mkdir -p "$state/tree"
    used=$(used_mb "$mountpoint")
    say "syncing $mountpoint out to $state/tree"
    sync_out "$mountpoint" "$state/tree"
    release_ext4
    say "$mountpoint ($used MB used) synced out to $state/tree and unmounted"
}

# dockerd renames DATA_ROOT/runtimes and DATA_ROOT/tmp at start (to delete
# them in the background). In a plain-files mode, after a restore they are
# directories of the image's lower layer, which the L1's overlay cannot
# rename ("invalid cross-device link": fatal for runtimes). Both are
# scratch: removed at stop (so not committed) and again at start (an image
# committed without a quiesce before 40-dockerd.sh removed runtimes once
# dockerd was ready has them). Where the L2's root is fuse-overlayfs, such an
# image still fails: after the removal, dockerd's own mkdir and rename make
# that L1 show the image's runtimes again ("rename .../gen-runtimes...
# .../runtimes: file exists"), and nothing in the L2 can hide it for good.
remove_scratch() {
    rm -rf "$data_root/runtimes" "$data_root/tmp"
}

# The type of the file system at / (fuse.fuse-overlayfs, overlay, ...).
root_fs_type() {
    awk '$5 == "/" { for (i = 7; $i != "-"; i++) {} type = $(i + 1) } END { print type }' /proc/self/mountinfo
}

# At start, before remove_scratch: the one image a restore cannot fix, said in one line.
warn_committed_runtimes() {
    if [ -d "$data_root/runtimes" ] && [ "$(root_fs_type)" = fuse.fuse-overlayfs ]; then
        echo "warning: $data_root/runtimes came with this image (a commit without a quiesce, by a 40-dockerd.sh older than the one that removes it): on this L1 (fuse-overlayfs) dockerd will fail to start ('rename .../gen-runtimes... .../runtimes: file exists'); restore an image committed after a quiesce (dind-init snapshot)" >&2
    fi
}

case "${1:-}" in
start)
    mode=$(storage_mode)
    unsafe=$(commit_blocker)
    data_root=$mountpoint
    case "$mode" in
    fuse-overlayfs)
        [ -c /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229
        fuse_overlayfs_works || echo "warning: fuse-overlayfs cannot make a directory on this L2's file system (the L1 engine's storage driver is fuse-overlayfs? it refuses the nested one's opaque xattr): L3 containers whose image lacks a directory they need fail to start; DIND_STORAGE=vfs or overlay-sync work here" >&2
        plain_data_root
        warn_committed_runtimes
        remove_scratch
        driver=fuse-overlayfs
        say "inner engine data: $data_root, plain files, fuse-overlayfs driver: $where"
        ;;
    vfs)
        plain_data_root
        warn_committed_runtimes
        remove_scratch
        driver=vfs
        say "inner engine data: $data_root, plain files, vfs driver: $where"
        ;;
    overlay-sync) start_overlay_sync; driver=overlay2 ;;
    loop) start_loop; driver=overlay2 ;;
    esac
    printf 'DIND_STORAGE=%s\nDIND_STORAGE_DRIVER=%s\nDIND_DOCKER_ROOT=%s\n' "$mode" "$driver" "$data_root" > /run/dind-storage.env
    say "storage mode $mode"
    [ -z "$unsafe" ] || echo "warning: $unsafe; every quiesce is not commit-safe" >&2
    ;;
stop)
    mode=$(storage_mode)
    unsafe=$(commit_blocker)
    case "$mode" in
    fuse-overlayfs | vfs)
        plain_data_root
        remove_scratch
        say "$data_root: plain files; dockerd's scratch directories removed"
        ;;
    overlay-sync) stop_overlay_sync ;;
    loop) stop_loop ;;
    esac
    [ -z "$unsafe" ] || die "not commit-safe: $unsafe"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
