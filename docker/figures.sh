#!/bin/sh
# The example's figures (`make figures` writes them into docs/staged-images.md):
# a full fresh setup of the example stack against a restore of its committed
# image, and the image size of each stage. Needs the images of `make images`
# (with the same REPO and DIND_INIT_BASE_IMAGE). Prints a Markdown table.
set -eu

repo=${REPO:-dind-init-example}
base=${DIND_INIT_BASE_IMAGE:-dind-init/base:latest}
runs=${RUNS:-5}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Milliseconds from `docker run` until dind-init reports phase running.
time_to_running() {
    began=$(now_ms)
    container=$(docker run -d "$@")
    docker exec "$container" dind-init status --wait running --timeout 900 >/dev/null
    took=$(( $(now_ms) - began ))
    docker rm -f "$container" >/dev/null
    echo "$took"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

deploy_ms=$(time_to_running "$repo/20-deploy:tmp")
deposit_ms=$(time_to_running "$repo/30-deposit:tmp")
restore_ms=$(for _ in $(seq "$runs"); do time_to_running "$repo/30-deposit:latest"; done | median)

size_mb() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1000000 }'; }
top_layer() { docker history --format '{{.Size}}' "$1" | head -n 1; }

echo "| what | figure |"
echo "|---|---|"
echo "| fresh setup: stage 20 deploy (run to ready) | ${deploy_ms} ms |"
echo "| fresh setup: stage 30 deposit on top (run to ready) | ${deposit_ms} ms |"
echo "| fresh setup total | $(( deploy_ms + deposit_ms )) ms |"
echo "| restore of the committed stage 30 image to ready (median of $runs) | ${restore_ms} ms |"
echo "| image $base (the base) | $(size_mb "$base") |"
for stage in 10-service 20-deploy 30-deposit; do
    echo "| image $stage (last layer: $(top_layer "$repo/$stage:latest")) | $(size_mb "$repo/$stage:latest") |"
done
