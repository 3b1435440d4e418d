# The two commands a newcomer needs (README):
#   make example   build the static binary and the example images, run the example
#   make test      everything CI checks: lint, unit, PID-namespace and Docker tests
MUSL_TARGET := x86_64-unknown-linux-musl
BIN := target/$(MUSL_TARGET)/release/dind-init

.PHONY: build base dind-l2 images example test lint peer-suites figures registry-figures dind-images dind-figures pool-figures dist release reproducible test-multiarch bench soak fuzz

build:
	cargo build --release --locked --target $(MUSL_TARGET)
	@file $(BIN) | grep -q 'statically linked' || { file $(BIN); echo "$(BIN) is not statically linked" >&2; exit 1; }
	@echo "static binary: $(BIN) ($$(stat -c %s $(BIN)) bytes)"

# Rebuilt every time, so the images always carry the binary just built.
base: build
	docker/build-base.sh

images: base
	$(MAKE) -C docker/stages/10-service image
	$(MAKE) -C docker/stages/30-deposit image

# Each of the two commands first runs its setup (scripts/setup: installs
# what this machine lacks, or says what to install), then its targets.
example:
	scripts/setup example
	$(MAKE) images
	docker/example.sh

# The init.d scripts (examples, DinD, the stages'), POSIX sh: the DinD ones run under busybox sh.
INIT_D_SCRIPTS = init.d-examples/*.sh init.d-examples/dind/*.sh docker/stages/*/l2/etc/dind-init/init.d/*.sh docker/dind/stages/*/l2/etc/dind-init/init.d/*.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets --locked -- -D warnings
	shellcheck $(INIT_D_SCRIPTS)

# The Docker end-to-end tests are #[ignore]d in a bare `cargo test` (they
# need the engine and the base image); here they run with everything else.
test:
	scripts/setup test
	$(MAKE) lint base dind-l2 dist
	cargo test --locked -- --include-ignored
	scripts/test-multiarch.sh
	scripts/check-reproducible.sh
	bench/run --quick --json target/bench-smoke.json
	scripts/fuzz.sh 10

# dind-init side by side with tini, tini-static, dumb-init and catatonit.
bench: build
	bench/run

# dumb-init's own test suite against dumb-init and against dind-init: fails on
# a difference not listed, with its reason, in scripts/peer-differences.txt.
peer-suites: build
	scripts/peer-suites --list

# The control request parser, the state file loader and the storage parsers under cargo fuzz.
fuzz:
	scripts/fuzz.sh 300

# Long runs, not in CI: one PID 1 through 1000 quiesce/resume cycles in a PID
# namespace and one container through 20 snapshot cycles, checking every
# byte a real service stored; the table goes into docs/development.md.
soak: images
	scripts/soak

# Release binaries for x86_64 and aarch64 with SHA256SUMS, in dist/.
dist:
	scripts/dist.sh

# Publish: `make release REPOSITORY=ghcr.io/OWNER/dind-init` pushes the
# per-architecture images and the manifest list REPOSITORY:VERSION.
release: dist
	scripts/release.sh $(REPOSITORY)

reproducible: dist
	scripts/check-reproducible.sh

test-multiarch: dist
	scripts/test-multiarch.sh

# The example's figures, written into docs/staged-images.md by the command that measures them.
figures: images
	@mkdir -p target
	docker/figures.sh >target/example-figures.md
	scripts/write-figures docs/staged-images.md example-figures "make figures" <target/example-figures.md

# What a runner pulls from a real registry: the registry test's figures, into docs/snapshot.md.
registry-figures: base
	cargo test --locked --test integration registry:: -- --include-ignored --nocapture >target/registry-figures.log 2>&1 \
		|| { cat target/registry-figures.log; exit 1; }
	@{ echo '| pull | bytes |'; echo '|---|---|'; sed -n 's/^figure | /| /p' target/registry-figures.log; } >target/registry-figures.md
	scripts/write-figures docs/snapshot.md registry-figures "make registry-figures" <target/registry-figures.md

# Docker-in-docker: the L2 base image (its debootstrap root file system is
# cached), rebuilt every time so it carries the binary and Dockerfile of now.
dind-l2: build
	docker/dind/build-l2.sh

dind-images: dind-l2
	$(MAKE) -C docker/dind/stages/20-stack image
	$(MAKE) -C docker/dind/stages/30-postgres tmp-image

# Every storage mode on the PostgreSQL stack (1,000,000 rows, 100,000 per
# cycle): target/dind-figures.json and the table in docs/dind.md.
dind-figures: dind-l2
	docker/dind/figures.py

# `dind-init pool` with stage 30-postgres's prepared image (built once, as
# $(POOL_FIGURES_REPO)/30-postgres:latest, when missing): take-to-answer
# and wall time for pool sizes 0-4; target/pool-figures.json and the README table.
POOL_FIGURES_REPO ?= dind-init-figures
POOL_FIGURES_FLAGS ?=
pool-figures: dind-l2
	docker image inspect $(POOL_FIGURES_REPO)/30-postgres:latest >/dev/null 2>&1 \
		|| $(MAKE) -C docker/dind/stages/30-postgres image REPO=$(POOL_FIGURES_REPO)
	POOL_FIGURES_IMAGE=$(POOL_FIGURES_REPO)/30-postgres:latest docker/dind/pool-figures.py $(POOL_FIGURES_FLAGS)
