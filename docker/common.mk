# The staged-image workflow of seed 000, shared by every stage's Makefile.
#
# A stage lives in docker/stages/NN-name/: l1/ holds what builds its image
# (l1/Dockerfile, FROM the image named by BASE_IMAGE), l2/ holds the files
# that go into the image (its init.d scripts carry the stage's NN prefix, so
# a later stage's scripts start after and stop before an earlier stage's).
#
# A stage's Makefile sets, then includes this file:
#   STAGE        its directory name (NN-name)
#   BASE_STAGE   the previous stage's directory name (empty for the first)
#   BASE_KIND    tmp-image: build FROM the previous stage's non-committed image
#                (what a stage that needs no runtime step offers, and the seed's
#                default); image: build FROM its committed image
#   NEEDS_COMMIT yes if the stage has runtime work (its init.d starts do it) and
#                its `image` is the committed container; no if `image` is
#                simply its tmp-image
#   RUN_FLAGS    extra `docker run` flags (e.g. --privileged for DinD)
#   RUN_FLAGS_FROM  a command whose output (shell-quoted words, like
#                docker/dind/run-flags.sh prints) is more `docker run` flags;
#                run by the recipes, so `make -n` runs nothing
#   BASE_TAG     (first stage) the image it builds FROM (default: the
#                environment's DIND_INIT_BASE_IMAGE, else dind-init/base:latest);
#                BASE_BUILD builds it when it is missing (default: docker/build-base.sh)
#   COMMIT_FLAGS extra `docker run` flags for the setup run of `commit` only
#                (a read-only bind mount of a bundle: mounts are not committed)
#   PREPARE      targets to make before tmp-image (generated l2/ files)
#
# Targets:
#   tmp-image  docker build of l1/Dockerfile, FROM the previous stage's image
#   commit     run tmp-image, wait until every start ran (that is the runtime
#              work), run SETUP if set, then `dind-init snapshot --rm` (quiesce,
#              refuse unless commit-safe, docker commit with labels, remove the
#              container); the container is removed on any failure too. The
#              host's dind-init: $DIND_INIT, else the musl release build.
#   image      the stage's final image (committed, or tmp-image if NEEDS_COMMIT=no)
#   run        docker run the stage's image in the foreground
#   clean      remove the stage's images

COMMON_DIR := $(dir $(lastword $(MAKEFILE_LIST)))
# Stages are sibling directories.
STAGES_DIR ?= $(abspath $(CURDIR)/..)
REPO ?= dind-init-example
BASE_TAG ?= $(or $(DIND_INIT_BASE_IMAGE),dind-init/base:latest)
BASE_BUILD ?= $(COMMON_DIR)build-base.sh $(BASE_TAG)
PREPARE ?=
TMP_IMAGE = $(REPO)/$(STAGE):tmp
IMAGE = $(REPO)/$(STAGE):latest
NEEDS_COMMIT ?= yes
BASE_KIND ?= tmp-image
RUN_FLAGS ?=
RUN_FLAGS_FROM ?=
# Shell words that set "$$@" to RUN_FLAGS_FROM's flags (or to nothing).
set_run_flags = $(if $(RUN_FLAGS_FROM),flags=$$($(RUN_FLAGS_FROM)) && eval "set -- $$flags",set --)
COMMIT_FLAGS ?=
SETUP ?=
COMMIT_TIMEOUT ?= 600

ifeq ($(strip $(BASE_STAGE)),)
BASE_IMAGE = $(BASE_TAG)
else ifeq ($(BASE_KIND),image)
BASE_IMAGE = $(REPO)/$(BASE_STAGE):latest
else
BASE_IMAGE = $(REPO)/$(BASE_STAGE):tmp
endif

.PHONY: base tmp-image commit image run clean

base:
ifeq ($(strip $(BASE_STAGE)),)
	@docker image inspect $(BASE_TAG) >/dev/null 2>&1 || $(BASE_BUILD)
else
	$(MAKE) -C $(STAGES_DIR)/$(BASE_STAGE) $(BASE_KIND)
endif

# The context is sent as a tar with symlinks followed, so l2/ may link to
# shared scripts (init.d-examples/) outside the stage directory.
tmp-image: base $(PREPARE)
	tar -chf - -C . l1 l2 | docker build -q --build-arg BASE_IMAGE=$(BASE_IMAGE) -f l1/Dockerfile -t $(TMP_IMAGE) - >/dev/null
	@echo "built $(TMP_IMAGE) from $(BASE_IMAGE)"

commit: tmp-image
	$(set_run_flags) && $(COMMON_DIR)commit.sh "$(TMP_IMAGE)" "$(IMAGE)" "$(COMMIT_TIMEOUT)" "$(SETUP)" $(COMMIT_FLAGS) $(RUN_FLAGS) "$$@"

ifeq ($(NEEDS_COMMIT),yes)
image: commit
else
image: tmp-image
	docker tag $(TMP_IMAGE) $(IMAGE)
endif

run: image
	$(set_run_flags) && docker run --rm -it $(RUN_FLAGS) "$$@" $(IMAGE)

clean:
	-docker rmi $(IMAGE) $(TMP_IMAGE) 2>/dev/null
