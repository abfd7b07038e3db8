# MyDigiBiz backend. `make help` lists the targets.
GO ?= go
PKGS := ./...

.PHONY: help run build test test-short race generate check-generated lint bench fuzz fmt

FUZZTIME ?= 60s

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'

run: ## run the server on the defaults (creates and migrates the database)
	$(GO) run ./cmd/digibiz serve

build: ## build bin/digibiz
	$(GO) build -o bin/digibiz ./cmd/digibiz

test: ## run every test against the local PostgreSQL (what CI runs)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

generate: ## regenerate gqlgen code from schema.graphql
	$(GO) tool gqlgen generate

check-generated: generate ## fail if generated code is out of date
	git diff --exit-code -- graphql/

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

bench: ## run the quick benchmarks (append, api); `digibiz bench import` takes minutes
	$(GO) run ./cmd/digibiz bench append
	$(GO) run ./cmd/digibiz bench api

fuzz: ## fuzz the contact file reader, the phone and email normalisers, template bodies and the GraphQL inputs, FUZZTIME each (default 60s)
	$(GO) test -run '^$$' -fuzz=FuzzReader -fuzztime=$(FUZZTIME) ./infra/contactfile
	$(GO) test -run '^$$' -fuzz=FuzzNormalizePhone -fuzztime=$(FUZZTIME) ./domain/contact
	$(GO) test -run '^$$' -fuzz=FuzzNormalizeEmail -fuzztime=$(FUZZTIME) ./domain/identity
	$(GO) test -run '^$$' -fuzz=FuzzParseBody -fuzztime=$(FUZZTIME) ./domain/campaign
	$(GO) test -run '^$$' -fuzz=FuzzMutationStrings -fuzztime=$(FUZZTIME) ./cmd/digibiz

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')
