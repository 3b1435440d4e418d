#!/bin/sh
# Lets this machine run aarch64 binaries and linux/arm64 containers: mounts
# binfmt_misc if needed and registers Debian's qemu-aarch64-static for
# aarch64 ELF files, with the F flag (the kernel opens the interpreter now,
# so it also works inside containers that do not have it). Prints why not
# and exits 1 where the kernel or the sandbox refuses.
set -eu

binfmt=/proc/sys/fs/binfmt_misc
qemu=$(command -v qemu-aarch64-static || true)
[ -n "$qemu" ] || { echo "arm64 emulation: no qemu-aarch64-static (apt-get install qemu-user-static)" >&2; exit 1; }
if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null \
        || { echo "arm64 emulation: cannot mount binfmt_misc at $binfmt" >&2; exit 1; }
fi
if [ -e "$binfmt/qemu-aarch64" ]; then
    grep -q '^flags: .*F' "$binfmt/qemu-aarch64" && { echo "arm64 emulation: already registered"; exit 0; }
    echo -1 > "$binfmt/qemu-aarch64"
fi
magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
printf ':qemu-aarch64:M::%s:%s:%s:OCF' "$magic" "$mask" "$qemu" > "$binfmt/register" \
    || { echo "arm64 emulation: the kernel refused the binfmt_misc registration" >&2; exit 1; }
echo "arm64 emulation: aarch64 ELF files run through $qemu"
