#!/bin/sh
# Prints the sum of the sizes of the regular files under DIR that `docker
# diff` lists as added or changed in CONTAINER: what a `docker commit` of it
# stores of DIR. DIR defaults to where the container's storage mode keeps
# the inner engine's data (the data root for fuse-overlayfs and vfs,
# /var/lib/dind-storage for loop).
#
# usage: docker/dind/changed-bytes.sh CONTAINER [DIR]
set -eu

container=${1:?usage: changed-bytes.sh CONTAINER [DIR]}
dir=${2:-}
if [ -z "$dir" ]; then
    case "$(docker exec "$container" cat /var/lib/dind-storage/mode)" in
    fuse-overlayfs | vfs)
        # The data root 30-docker-storage.sh chose (/var/lib/dind-storage/docker
        # where /var/lib/docker is a volume, as in docker:dind).
        dir=$(docker exec "$container" sh -c '. /run/dind-storage.env 2>/dev/null; echo "${DIND_DOCKER_ROOT:-/var/lib/docker}"')
        ;;
    *) dir=/var/lib/dind-storage ;;
    esac
fi
docker diff "$container" | awk -v dir="$dir/" '$1 != "D" && index(substr($0, 3), dir) == 1 { print substr($0, 3) }' |
    docker exec -i "$container" sh -c 'while IFS= read -r path; do
        if [ -f "$path" ] && [ ! -h "$path" ]; then stat -c %s "$path"; fi
    done' |
    awk '{ sum += $1 } END { printf "%.0f\n", sum }'
