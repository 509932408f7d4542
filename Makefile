# Wengang — see README.md. Every target runs from a fresh clone.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BUF := $(GO) tool -modfile=tools/buf.mod buf

DEMO_DIR ?= demo-out
DEMO_COUNTIES ?= 371502,371521,371526
DEMO_UNITS ?= 2000
DEMO_SEED ?= 20220428

.PHONY: demo test build proto lint breaking bench pg-start pg-stop

## demo: generate three counties' source files, screen them, print per-county totals
demo: build
	bin/wengang gen --out $(DEMO_DIR)/data --counties $(DEMO_COUNTIES) --units $(DEMO_UNITS) --seed $(DEMO_SEED)
	bin/wengang screen --dir $(DEMO_DIR)/data --as-of 2022-04-28 --out $(DEMO_DIR)/results.csv
	@echo "results: $(DEMO_DIR)/results.csv"

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

## bench: the screening benchmark (100,000 units) against parsing alone
bench:
	$(GO) test -run '^$$' -bench 'Screen|Parse' -benchmem -count 6 ./internal/source/ | tee bench.txt

## pg-start / pg-stop: a development PostgreSQL cluster (prints its URL)
pg-start:
	deploy/postgres/cluster.sh start
pg-stop:
	deploy/postgres/cluster.sh stop
