# Shared by the DinD stages that bring L3 images: included by the stage's
# Makefile (after STAGE, BASE_STAGE, ... and BUNDLE_IMAGES), it includes
# common.mk. The bundle (build-bundle.sh BUNDLE_IMAGES) is mounted read-only
# for the setup run only, never copied into the image: a bind mount is not
# committed, so the images are stored once, as the inner engine's layers.
#   BUNDLE_IMAGES  what build-bundle.sh saves (busybox, postgres)
#   DIND_STORAGE   the inner engine's storage mode (empty: the default)
#   SETUP_ENV      more `-e VAR=value` flags for the setup run
DIND_STORAGE ?=
SETUP_ENV ?=
BUNDLE := bundle/images.tar
# no-bundle-in-l2: before the bundle was mounted, it was copied into
# l2/opt/dind-bundle/ (git ignores it), and a checkout that still has it
# would put it into the image again.
PREPARE := $(BUNDLE) no-bundle-in-l2
# The L2 base image the run flags are probed with (see stages/10-engine).
DIND_L2_IMAGE ?= dind-init/dind-l2:storage
# Unless RUN_FLAGS is given, the recipes ask run-flags.sh when they run
# (never while make parses, so `make -n` probes nothing).
ifndef RUN_FLAGS
RUN_FLAGS_FROM := ../../run-flags.sh $(DIND_L2_IMAGE)
endif
COMMIT_FLAGS = -v $(CURDIR)/bundle:/opt/dind-bundle:ro -e DIND_STORAGE=$(DIND_STORAGE) $(SETUP_ENV)
include ../../../common.mk

.PHONY: $(BUNDLE) no-bundle-in-l2
no-bundle-in-l2:
	rm -rf l2/opt/dind-bundle

$(BUNDLE):
	../../build-bundle.sh $@ $(BUNDLE_IMAGES)
