# Wengang — see README.md. Every target runs from a fresh clone.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BUF := $(GO) tool -modfile=tools/buf.mod buf

DEMO_DIR ?= demo-out
DEMO_COUNTIES ?= 371502,371521,371526
DEMO_UNITS ?= 500
DEMO_SEED ?= 20220428

.PHONY: demo test build proto lint breaking bench loadtest pg-start pg-stop

## demo: a private PostgreSQL, the city and three county nodes, generated data, import to paid
demo: build
	bin/wengang demo --counties $(DEMO_COUNTIES) --units $(DEMO_UNITS) --seed $(DEMO_SEED) \
		--export-dir $(DEMO_DIR)/data --summary-json $(DEMO_DIR)/summary.json
	@echo "each county's source files: $(DEMO_DIR)/data/COUNTY/; summary: $(DEMO_DIR)/summary.json"

## test: gofmt, vet, contract checks and every test against a private PostgreSQL
test:
	scripts/test.sh

build:
	$(GO) build -o bin/wengang ./cmd/wengang

## proto: regenerate the Go code beside the .proto files
proto:
	scripts/proto-check.sh generate

## lint: gofmt, go vet, buf lint and format
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(BUF) lint
	$(BUF) format -d --exit-code

## breaking: buf breaking against a git ref (REF=main by default)
REF ?= main
breaking:
	scripts/proto-check.sh breaking $(REF)

## bench: the screening benchmark (100,000 units) against reading alone
bench:
	$(GO) test -run '^$$' -bench 'Screen|Read' -benchmem -count 6 ./internal/source/ | tee bench.txt

## loadtest: wrk against the portal's list page of a 50,000-enterprise round and a static page of the same size
loadtest:
	scripts/loadtest.sh

## pg-start / pg-stop: a development PostgreSQL cluster (prints its URL)
pg-start:
	deploy/postgres/cluster.sh start
pg-stop:
	deploy/postgres/cluster.sh stop
