# narwhal — build, demo, test, benchmark, install.
# `make demo` and `make test` install what they need (apt-get) when missing.

CARGO ?= cargo
# Built for the host's target triple as a static-pie binary
# (.cargo/config.toml), so it lives under target/<triple>/.
TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
BIN := target/$(TRIPLE)/release/narwhal
ROOT := $(shell id -u)

.PHONY: all build demo demo-multihost test test-unit test-package bench bench-multihost bench-scale test-cleanup lint clean

all: build

build:
	$(CARGO) build --release --locked
	@echo "narwhal: $(BIN)"

# The main job: a runc container configured by the narwhal hook.
demo: build
	bash tests/e2e/deps.sh demo
	bash tests/e2e/demo.sh $(BIN)

# Two hosts and a router (namespaces), BIRD on each: containers on
# different hosts talk over routes announced with BGP (docs/multi-host.md).
demo-multihost: build
	bash tests/e2e/deps.sh multihost
	bash tests/e2e/multihost-demo.sh $(BIN)

# The whole test suite: unit tests, kernel integration tests, runc/crun/
# podman/Docker end to end. As root a skipped privileged test is a failure.
# The private dockerd the Docker tests start is stopped when the suite ends.
test:
	bash tests/e2e/deps.sh test
	status=0; $(if $(filter 0,$(ROOT)),NARWHAL_REQUIRE_PRIVILEGED=1) $(CARGO) test --locked -- --test-threads=$${NARWHAL_TEST_THREADS:-4} || status=$$?; \
	bash tests/e2e/dockerd.sh stop >/dev/null 2>&1 || true; \
	$(MAKE) -s test-cleanup; exit $$status

# The Docker tests' private dockerd runs in this machine's own namespace,
# where the first setup makes the shared source check. Their container
# guards remove it when the last one goes (unless a narwhal link, interface
# group 77, still uses it); this does the same for a run that was killed.
test-cleanup:
	@if [ "$(ROOT)" = 0 ] && command -v nft >/dev/null && ! ip -o link show group 77 2>/dev/null | grep -q .; then \
		nft delete table inet narwhal 2>/dev/null || true; fi

# Unprivileged part only (parsing, validation, plans).
test-unit:
	$(CARGO) test --locked --lib

# Build the .deb, install it, run podman with the installed hook, remove it.
test-package:
	bash tests/e2e/package.sh

bench: build
	bash tests/e2e/deps.sh bench
	bash bench/run.sh $(BIN)

# 10 hosts x 100 containers at one router (BENCHMARKS.md, "Many hosts").
bench-multihost: build
	bash tests/e2e/deps.sh multihost
	bash bench/multihost.sh $(BIN)

# Setup with 0 / 1,000 / 3,000 existing containers, per-step attribution,
# `runc run` with and without the hook, podman run (issue #15); options:
# bench/scale.py --help. About 7 minutes; prints a Markdown table.
bench-scale: build
	bash tests/e2e/deps.sh bench
	bash bench/scale.sh $(BIN) $(SCALE_ARGS)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

clean:
	$(CARGO) clean

-include packaging/Makefile.inc
