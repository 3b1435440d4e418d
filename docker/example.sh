#!/bin/sh
# The example's last step: run the committed image of the staged example,
# show that it comes back ready with the deployed state, and stop it.
set -eu

image=${1:-${REPO:-dind-init-example}/30-deposit:latest}
container=$(docker run -d "$image")
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT

began=$(date +%s%N)
docker exec "$container" dind-init status --wait running --timeout 60 >/dev/null
ready_ms=$(( ($(date +%s%N) - began) / 1000000 ))
echo "== $image ready ${ready_ms}ms after docker run; dind-init status:"
docker exec "$container" dind-init status
echo "== the service answers with the state deployed before the commit:"
docker exec "$container" wget -qO- http://127.0.0.1:8080/cgi-bin/summary.cgi
echo "== docker stop:"
docker stop "$container" >/dev/null
echo "exit code $(docker inspect -f '{{.State.ExitCode}}' "$container"); last log lines:"
docker logs --tail 6 "$container" 2>&1
