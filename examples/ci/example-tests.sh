#!/bin/sh
# The tests of a CI test job, run on the host against the container that
# prepared-image.sh test restored from the prepared image (its id in
# PREPARED_CONTAINER). Here: the example stack of docker/stages/ answers with
# the state it had at the commit. Put your project's test command here.
set -eu
container=${PREPARED_CONTAINER:?run me through examples/ci/prepared-image.sh test}
docker exec "$container" dind-init status
summary=$(docker exec "$container" wget -qO- http://127.0.0.1:8080/cgi-bin/summary.cgi)
echo "$summary"
echo "$summary" | grep -Eq '^records [1-9][0-9]*$' || { echo "example-tests: no records served" >&2; exit 1; }
