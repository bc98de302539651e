# Samsa — the README's two commands are `make run` and `make test`.
SHELL := /usr/bin/env bash
CARGO ?= cargo

.PHONY: run test deps k8s-bin fmt-check lint unit compat e2e e2e-kind bench fuzz-frame fuzz-batch build images crds helm-lint

## Start a single-node broker on localhost:9092 with embedded defaults (data in ./data).
run:
	$(CARGO) run --release -p samsa-broker --bin samsa-broker

build:
	$(CARGO) build -p samsa-broker --bin samsa-broker -p samsa-operator --bin samsa-operator

## Regenerate crds/ from the operator's Rust types (a test fails when crds/ is stale).
crds:
	$(CARGO) run -p samsa-operator --bin samsa-operator -- crds --out crds

## Install what the tests need (idempotent), then run every test. Non-incremental builds: the
## incremental caches would double the target directory on the disk the e2e node shares.
test: export CARGO_INCREMENTAL = 0
test: deps k8s-bin fmt-check lint unit compat e2e

deps:
	./scripts/test-deps.sh

## etcd and the Kubernetes binaries, built from upstream sources into a cache (idempotent): the
## operator's tests start a real kube-apiserver, the e2e tests a whole cluster.
k8s-bin:
	./e2e/build-binaries.sh etcd kubernetes

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

compat: build
	./scripts/compat-tests.sh

## Container image archives of the programs (static binaries, FROM scratch) in target/images,
## for `e2e/cluster load-images` and `e2e/kind.sh`; no Docker engine needed.
images:
	./scripts/build-images.sh

## End to end on a real Kubernetes built from upstream sources (containerd node, no Docker);
## with SAMSA_E2E_EXISTING=1 and KUBECONFIG set, against that cluster instead. See e2e/README.md.
e2e:
	./e2e/run.sh

## The kind path, where a Docker engine exists (untested here).
e2e-kind:
	./e2e/kind.sh

## Samsa vs Apache Kafka on this machine (not part of `make test`); results in target/bench/.
## `make bench BENCH_ARGS=--quick` for a short smoke run.
bench:
	./broker/bench/run.sh $(BENCH_ARGS)

## Fuzzing (not part of `make test`; needs a nightly toolchain and cargo-fuzz).
fuzz-frame:
	cd broker/fuzz && $(CARGO) +nightly fuzz run request_frame -- -max_total_time=300

fuzz-batch:
	cd broker/fuzz && $(CARGO) +nightly fuzz run record_batch -- -max_total_time=300

## The Helm chart: its CRDs match crds/, `helm lint --strict` is clean, `helm template` renders,
## its Grafana dashboards are what their generator writes (its venv: `test-deps.sh dashboards`),
## its PrometheusRule passes `promtool check rules` and its unit tests.
helm-lint:
	./e2e/build-binaries.sh helm prometheus
	./scripts/test-deps.sh dashboards >/dev/null
	./charts/check.sh
