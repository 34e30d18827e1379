# xenmanager: make run (demo fleet), make test (everything), make help.
GO       ?= go
BIN      := bin
DATA     ?= xenmanager-data
LISTEN   ?= :10000
DEMO     ?= 3
BENCHFLAGS ?=

.PHONY: help build run test fuzz check docs clean
.PHONY: bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build bin/xenmanager and bin/xenagent
	CGO_ENABLED=0 $(GO) build -o $(BIN)/xenmanager ./cmd/xenmanager
	CGO_ENABLED=0 $(GO) build -o $(BIN)/xenagent ./cmd/xenagent

run: build ## run the manager on $(LISTEN) with a demo fleet of $(DEMO) simulated servers (data in $(DATA))
	$(BIN)/xenmanager serve --listen $(LISTEN) --data $(DATA) --demo $(DEMO)

test: check ## run every test: vet, format and import checks, unit, integration (-race) and end-to-end through OpenSSH
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

fuzz: ## run each fuzz target for a while (FUZZTIME, default 30s)
	$(GO) test ./commands -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./backend/agentapi/vmcfg -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./backend/agent/xmlrpcserver -run '^$$' -fuzz FuzzDecodeCall -fuzztime $${FUZZTIME:-30s}

check: ## go vet, gofmt, go mod tidy -diff and the import rules of docs/architecture.md (with a test of that check)
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) mod tidy -diff
	.ci/check-imports
	.ci/check-imports-test

docs: ## regenerate docs/reference.md from the command registry
	$(GO) run ./cmd/xenmanager reference > docs/reference.md

bench: build ## measure every figure of issue 6 beside its baseline into bench-results.md (BENCHFLAGS=--quick: ~2 min)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/xenbench ./cmd/xenbench
	$(BIN)/xenbench --bin $(BIN) $(BENCHFLAGS)

clean: ## remove built binaries (not the data directory)
	rm -rf $(BIN)
