#!/bin/sh
# Prepares a user for rootless podman (run as root; idempotent): creates the
# user, gives it 65536 subordinate uids and gids (/etc/subuid, /etc/subgid)
# and a runtime directory /run/user/UID. Prints the user's name.
#
# usage: scripts/setup-rootless-podman.sh [USER]   (default dind-init-rootless)
set -eu

user=${1:-dind-init-rootless}
die() { echo "setup-rootless-podman: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
command -v podman >/dev/null || die "no podman: apt-get install podman"
command -v newuidmap >/dev/null || die "no newuidmap: apt-get install uidmap"

id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user" \
    || die "useradd $user failed"
# A range nobody else has: above every range already given out.
for file in /etc/subuid /etc/subgid; do
    touch "$file"
    if ! grep -q "^$user:" "$file"; then
        start=$(awk -F: 'BEGIN { top = 100000 } { end = $2 + $3; if (end > top) top = end } END { print top }' "$file")
        echo "$user:$start:65536" >> "$file"
    fi
done
uid=$(id -u "$user")
mkdir -p "/run/user/$uid"
chown "$user" "/run/user/$uid"
chmod 700 "/run/user/$uid"
echo "$user"
