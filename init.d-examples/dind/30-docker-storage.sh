#!/bin/sh
# DinD step 3: where the inner engine keeps its data, so that a `docker
# commit` of the L2 stores it and a restore finds it. The decisions, the
# saves and the refusals are `dind-init storage` (src/storage/); the modes
# (DIND_STORAGE: auto, fuse-overlayfs, vfs, loop), the journal, ownership
# and every refusal are in docs/dind.md, "Storage modes". It writes
# /run/dind-storage.env for 40-dockerd.sh and 50-image-bundle.sh.
exec dind-init storage "$@"
