#!/bin/sh
# Figures of the docker-in-docker stages for the README: per stage, the data
# the inner docker uses, the commit time and the committed layer size; time
# to ready of a fresh setup against a restore; growth over 3 successive
# commits. Needs the images of `make dind-images`. Prints Markdown tables.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=${REPO:-dind-init-example}
flags=$("$here/run-flags.sh")

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
run() { eval "docker run -d $flags \"\$1\""; }
wait_running() { docker exec "$1" dind-init status --wait running --timeout 900 >/dev/null; }
used_mb() { docker exec "$1" df -m /var/lib/docker | awk 'NR == 2 { print $3 }'; }
layer() { docker history --format '{{.Size}}' "$1" | head -n 1; }
total() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1000000 }'; }

# Runs IMAGE to ready, quiesces, commits as TARGET; prints
# "ready_ms used_mb quiesce_ms commit_ms".
cycle() {
    began=$(now_ms)
    container=$(run "$1")
    wait_running "$container"
    ready=$(( $(now_ms) - began ))
    used=$(used_mb "$container")
    began=$(now_ms)
    docker exec "$container" dind-init quiesce --timeout 600 >/dev/null
    quiesce=$(( $(now_ms) - began ))
    began=$(now_ms)
    docker commit "$container" "$2" >/dev/null
    commit=$(( $(now_ms) - began ))
    docker rm -f "$container" >/dev/null
    echo "$ready $used $quiesce $commit"
}

echo "| stage | ready after docker run | data used in /var/lib/docker | quiesce | docker commit | committed layer | image |"
echo "|---|---|---|---|---|---|---|"
fresh=0
for stage in 10-engine 20-stack; do
    set -- $(cycle "$repo/$stage:tmp" "$repo/figures-$stage:latest")
    fresh=$((fresh + $1))
    echo "| $stage | $1 ms | $2 MB | $3 ms | $4 ms | $(layer "$repo/figures-$stage:latest") | $(total "$repo/figures-$stage:latest") |"
done

began=$(now_ms)
container=$(run "$repo/20-stack:latest")
wait_running "$container"
restore=$(( $(now_ms) - began ))
docker rm -f "$container" >/dev/null
echo
echo "| to ready | time |"
echo "|---|---|"
echo "| fresh setup (stage 10 then stage 20 runtime work, each from docker run) | $fresh ms |"
echo "| restore of the committed stage 20 image | $restore ms |"

echo
echo "| successive commit of the restored stack | committed layer | image |"
echo "|---|---|---|"
previous=$repo/20-stack:latest
for n in 1 2 3; do
    cycle "$previous" "$repo/figures-growth-$n:latest" >/dev/null
    previous=$repo/figures-growth-$n:latest
    echo "| $n | $(layer "$previous") | $(total "$previous") |"
done
for image in figures-10-engine figures-20-stack figures-growth-1 figures-growth-2 figures-growth-3; do
    docker rmi -f "$repo/$image:latest" >/dev/null 2>&1 || true
done
