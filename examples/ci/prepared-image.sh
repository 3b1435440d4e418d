#!/bin/sh
# The CI recipe's steps, in one script that the GitHub Actions workflow and
# the GitLab CI job call (and that tests/ci_recipe.rs runs against a local
# registry, so what the YAML does is what is tested):
#
#   prepare   build the prepared (committed) image once per set of inputs:
#             its tag is a hash of the stage inputs; when the registry
#             already has that tag nothing is built, else the image is built
#             and pushed
#   test CMD  in a test job: pull the prepared image of these inputs, run
#             it, wait for `dind-init status --wait running`, run CMD on the
#             host with PREPARED_CONTAINER set to the container's id, then
#             `docker rm -f -v` the container (also when CMD fails); exits
#             with CMD's code
#   tag       print the image reference of the current inputs
#   pool-fill N     in a job that runs several tests: pull the prepared
#             image and keep N restored containers of it booting or ready
#             (`dind-init pool fill`), so each test gets one in milliseconds
#   pool-test CMD   take a ready container from that pool (`dind-init pool
#             take`: never one still starting, never one another test holds;
#             a replacement starts in the background), run CMD with
#             PREPARED_CONTAINER set to its name, then release it (`rm -f
#             -v`), also when CMD fails; exits with CMD's code
#   pool-drain      remove the pool's containers, taken or not
#
# Configuration (environment):
#   PREPARED_REPOSITORY  where the prepared images go (required), e.g.
#                        ghcr.io/OWNER/REPO/prepared
#   PREPARED_INPUTS      files and directories whose content makes the key,
#                        relative to the checkout (default: this repository's
#                        example stages and what goes into them)
#   PREPARED_BUILD       shell command that builds the image locally
#                        (default: make images REPO=dind-init-ci)
#   PREPARED_LOCAL       the image PREPARED_BUILD makes
#                        (default: dind-init-ci/30-deposit:latest)
#   PREPARED_RUN_FLAGS   flags for `docker run` (a DinD L2 needs
#                        docker/dind/run-flags.sh's or --privileged)
#   PREPARED_TIMEOUT     seconds to wait for phase running (default 300)
#   PREPARED_POOL        the pool's name (default prepared)
#   DIND_INIT            the host's dind-init for the pool commands (default:
#                        `dind-init` on PATH, else the prepared image's own,
#                        copied out of it)
#
# usage: examples/ci/prepared-image.sh prepare|tag|pool-drain
#        examples/ci/prepared-image.sh test|pool-test CMD [ARGS...]
#        examples/ci/prepared-image.sh pool-fill N
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
say() { echo "prepared-image: $*" >&2; }
die() { say "$*"; exit 1; }

repository=${PREPARED_REPOSITORY:?set PREPARED_REPOSITORY to where the prepared images go, e.g. ghcr.io/OWNER/REPO/prepared}
inputs=${PREPARED_INPUTS:-"docker/stages docker/common.mk docker/commit.sh docker/base docker/build-base.sh init.d-examples src Cargo.toml Cargo.lock build.rs"}
build=${PREPARED_BUILD:-make images REPO=dind-init-ci}
local_image=${PREPARED_LOCAL:-dind-init-ci/30-deposit:latest}
run_flags=${PREPARED_RUN_FLAGS:-}
timeout=${PREPARED_TIMEOUT:-300}

# The key: every input file's path, mode and content, in byte order of the
# path. A file added, removed, changed or made executable changes it.
key() {
    for input in $inputs; do
        [ -e "$input" ] || die "input $input does not exist (PREPARED_INPUTS)"
    done
    # shellcheck disable=SC2086 # one word per input
    find $inputs -type f -printf '%m %p\n' | LC_ALL=C sort -k 2 | while read -r mode path; do
        echo "$mode $(sha256sum < "$path" | cut -c 1-64) $path"
    done | sha256sum | cut -c 1-16
}

# A loopback registry speaks plain HTTP: docker manifest needs --insecure.
case "$repository" in
127.* | localhost:* | localhost/*) insecure=--insecure ;;
*) insecure= ;;
esac

pool=${PREPARED_POOL:-prepared}

# The host's dind-init: DIND_INIT, dind-init on PATH, or the one in the
# prepared image (every dind-init image has it), copied out once.
host_dind_init() {
    if [ -n "${DIND_INIT:-}" ]; then
        echo "$DIND_INIT"
    elif command -v dind-init >/dev/null 2>&1; then
        command -v dind-init
    else
        copy=${TMPDIR:-/tmp}/prepared-image-dind-init
        if [ ! -x "$copy" ]; then
            created=$(docker create "$1") || die "cannot create a container of $1 to copy its dind-init"
            docker cp "$created:/usr/local/bin/dind-init" "$copy" >/dev/null \
                || { docker rm "$created" >/dev/null; die "$1 has no /usr/local/bin/dind-init: set DIND_INIT"; }
            docker rm "$created" >/dev/null
        fi
        echo "$copy"
    fi
}

# Runs CMD with PREPARED_CONTAINER=$1 and says how it ended; returns its code.
run_tests() {
    container=$1
    shift
    status=0
    PREPARED_CONTAINER=$container "$@" || status=$?
    say "test command exited $status; removing the container and its volumes"
    return "$status"
}

in_registry() {
    # shellcheck disable=SC2086 # empty or --insecure
    docker manifest inspect $insecure "$1" >/dev/null 2>&1
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
tag)
    echo "$repository:$(key)"
    ;;
prepare)
    image=$repository:$(key)
    if in_registry "$image"; then
        say "$image is in the registry: its inputs have not changed, nothing to build"
        exit 0
    fi
    say "$image is not in the registry: building it ($build)"
    sh -c "$build"
    docker image inspect "$local_image" >/dev/null 2>&1 \
        || die "'$build' did not make $local_image (PREPARED_LOCAL)"
    docker tag "$local_image" "$image"
    docker push -q "$image" >/dev/null
    say "pushed $image"
    ;;
test)
    [ $# -gt 0 ] || die "usage: prepared-image.sh test CMD [ARGS...]"
    image=$repository:$(key)
    docker pull -q "$image" >/dev/null \
        || die "cannot pull $image: run 'prepared-image.sh prepare' for these inputs first"
    # shellcheck disable=SC2086 # flags are words
    container=$(docker run -d $run_flags "$image")
    trap 'docker rm -f -v "$container" >/dev/null 2>&1 || true' EXIT INT TERM
    if ! docker exec "$container" dind-init status --wait running --timeout "$timeout" >/dev/null; then
        docker logs --tail 40 "$container" >&2 2>&1 || true
        die "$image did not reach phase running within ${timeout}s"
    fi
    say "$image running in container $container"
    run_tests "$container" "$@" || exit $?
    ;;
pool-fill)
    [ $# -eq 1 ] || die "usage: prepared-image.sh pool-fill N"
    image=$repository:$(key)
    docker pull -q "$image" >/dev/null \
        || die "cannot pull $image: run 'prepared-image.sh prepare' for these inputs first"
    dind_init=$(host_dind_init "$image")
    # shellcheck disable=SC2086 # flags are words
    "$dind_init" pool fill "$image" --name "$pool" --size "$1" -- $run_flags
    say "pool $pool: $1 container(s) of $image booting"
    ;;
pool-test)
    [ $# -gt 0 ] || die "usage: prepared-image.sh pool-test CMD [ARGS...]"
    dind_init=$(host_dind_init "$repository:$(key)")
    container=$("$dind_init" pool take "$pool" --timeout "$timeout") \
        || die "no ready container in pool $pool within ${timeout}s (run 'prepared-image.sh pool-fill N' first)"
    trap '"$dind_init" pool release "$container" >/dev/null 2>&1 || true' EXIT INT TERM
    say "pool $pool: running in container $container"
    run_tests "$container" "$@" || exit $?
    ;;
pool-drain)
    dind_init=$(host_dind_init "$repository:$(key)")
    "$dind_init" pool drain "$pool" --all
    ;;
*)
    die "usage: prepared-image.sh prepare|tag|pool-drain, prepared-image.sh test|pool-test CMD [ARGS...], or prepared-image.sh pool-fill N"
    ;;
esac
