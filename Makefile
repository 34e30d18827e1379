# xenmanager: make run (demo fleet), make test (everything), make help.
GO       ?= go
BIN      := bin
DATA     ?= xenmanager-data
# make run's manager listens on loopback only: its demo fleet comes with a
# live admin account. serve's own default, :10000, is every interface.
LISTEN   ?= 127.0.0.1:10000
DEMO     ?= 3
BENCHFLAGS ?=
# make run-libvirt: its own data directory and port (a port of its own keeps
# ssh's known_hosts entry for make run's manager valid), and LAB_SECOND=auto
# (a second libvirt host when root and namespaces allow), yes or no.
LAB_DATA   ?= xenlab-data
LAB_LISTEN ?= 127.0.0.1:10001
LAB_SECOND ?= auto

.PHONY: help build run run-libvirt test test-qemu postgres fuzz check docs clean
.PHONY: bench

# help prints each target's "## " text with the variables in it replaced by
# the values make has now (make help LISTEN=... shows that address): awk
# gets HELP_VARS in its environment and replaces each $(NAME) of them.
# make check fails when a text names a variable left out of HELP_VARS.
HELP_VARS := DATA LISTEN DEMO LAB_DATA LAB_LISTEN
help: ## list the targets
	@$(foreach v,$(HELP_VARS),$(v)='$($(v))') awk -F':.*## ' ' \
	  function expand(text,   out, name) { \
	    out = ""; \
	    while (match(text, /\$$\([A-Z_]+\)/)) { \
	      name = substr(text, RSTART + 2, RLENGTH - 3); \
	      out = out substr(text, 1, RSTART - 1) (name in ENVIRON ? ENVIRON[name] : substr(text, RSTART, RLENGTH)); \
	      text = substr(text, RSTART + RLENGTH); \
	    } \
	    return out text; \
	  } \
	  /^[a-z-]+:.*## / { printf "  make %-12s %s\n", $$1, expand($$2) }' $(MAKEFILE_LIST)

build: ## build bin/xenmanager and bin/xenagent
	CGO_ENABLED=0 $(GO) build -o $(BIN)/xenmanager ./cmd/xenmanager
	CGO_ENABLED=0 $(GO) build -o $(BIN)/xenagent ./cmd/xenagent

run: build ## run the manager on $(LISTEN) with a demo fleet of $(DEMO) simulated servers (data in $(DATA))
	$(BIN)/xenmanager serve --listen $(LISTEN) --data $(DATA) --demo $(DEMO)

# run-libvirt runs cmd/xenlab: it checks what the machine lacks (libvirtd,
# QEMU, root for the second host) and says how to get it, builds or reuses
# the guest image, starts the manager and libvirt agents, sets up a pool, a
# repository and Vm guest1 through the manager's shell, and stops it all on
# Ctrl-C (README.md, docs/hypervisors.md).
run-libvirt: build ## run the manager on $(LAB_LISTEN) with one or two local libvirt hosts that boot real QEMU guests (Vm guest1; data in $(LAB_DATA); Ctrl-C stops it all)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/xenlab ./cmd/xenlab
	$(BIN)/xenlab --bin $(BIN) --data $(LAB_DATA) --listen $(LAB_LISTEN) --second $(LAB_SECOND)

# The store's tests run on SQLite and on PostgreSQL; the PostgreSQL half
# needs a server (XENMANAGER_TEST_POSTGRES, make postgres) and is skipped
# without one, which test says in one line (go test shows no skips). With
# a server, the manager core's integration suite (backend: the core with
# its agents) runs a second time with its store on PostgreSQL.
test: check ## run every test: vet, format and import checks, unit, integration (-race, the core's on both engines) and end-to-end through OpenSSH, then, as a step of their own, the tests that boot real guests
	@[ -n "$$XENMANAGER_TEST_POSTGRES" ] || echo "make test: XENMANAGER_TEST_POSTGRES is not set: the tests on PostgreSQL are SKIPPED (.ci/with-postgres make test runs them; docs/postgresql.md)"
	CGO_ENABLED=1 $(GO) test -race -count=1 -skip QEMU ./...
	@if [ -n "$$XENMANAGER_TEST_POSTGRES" ]; then \
	  echo "XENMANAGER_TEST_ENGINE=postgres CGO_ENABLED=1 $(GO) test -race -count=1 -skip QEMU ./backend/"; \
	  XENMANAGER_TEST_ENGINE=postgres CGO_ENABLED=1 $(GO) test -race -count=1 -skip QEMU ./backend/; fi
	CGO_ENABLED=1 $(GO) test -race -count=1 -p 1 -run QEMU ./...

# The tests whose names contain QEMU boot real guests (QEMU under TCG, the
# system libvirtd and private ones: docs/libvirt-testing.md); test runs them
# in a step of their own, one package at a time, so that two packages never
# boot guests at once on a small machine. With -race: their time goes to the
# guests, the first step has built every package with -race already (without
# it, a cold CI would build them all again), and the libvirt driver's races
# show under real guests; on a warm cache it costs about 20 s of race-built
# test binaries starting.
test-qemu: ## run only the tests that boot real guests (QEMU, libvirt; root), one package at a time (-race)
	CGO_ENABLED=1 $(GO) test -race -count=1 -p 1 -run QEMU ./...

postgres: ## start a throwaway PostgreSQL server for the tests (initdb in a temporary directory, a free loopback port), print the XENMANAGER_TEST_POSTGRES line to export, and keep it until Ctrl-C
	.ci/with-postgres --no-fsync

fuzz: ## run each fuzz target for a while (FUZZTIME, default 30s)
	$(GO) test ./commands -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./backend/agentapi/vmcfg -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./backend/agentapi/xmlrpcwire -run '^$$' -fuzz FuzzDecodeCall -fuzztime $${FUZZTIME:-30s}

check: ## go vet, gofmt, go mod tidy -diff, the import rules of docs/architecture.md (with a test of that check) and make help's values
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) mod tidy -diff
	.ci/check-imports
	.ci/check-imports-test
	@if $(MAKE) --no-print-directory -s help | grep -F '$$('; then \
	  echo "make help leaves the variables above unexpanded: add them to HELP_VARS"; exit 1; fi

docs: ## regenerate docs/reference.md from the command registry
	$(GO) run ./cmd/xenmanager reference > docs/reference.md

bench: build ## measure every figure (issues 6, 13, 14, 15) beside its baseline into bench-results.md (BENCHFLAGS=--quick: ~4 min)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/xenbench ./cmd/xenbench
	$(BIN)/xenbench --bin $(BIN) $(BENCHFLAGS)

clean: ## remove built binaries (not the data directory)
	rm -rf $(BIN)
