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
PREPARE := $(BUNDLE)
ifndef RUN_FLAGS
RUN_FLAGS := $(shell ../../run-flags.sh)
endif
COMMIT_FLAGS = -v $(CURDIR)/bundle:/opt/dind-bundle:ro -e DIND_STORAGE=$(DIND_STORAGE) $(SETUP_ENV)
include ../../../common.mk

.PHONY: $(BUNDLE)
$(BUNDLE):
	../../build-bundle.sh $@ $(BUNDLE_IMAGES)
