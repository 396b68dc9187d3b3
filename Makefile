# flux-rtmpd: the two commands a user needs are `make run` and `make test`;
# both install what they need first (hack/setup.sh is idempotent).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# npm's local bin first: it carries Node 24 (the `node` devDependency).
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

RTMP_BIND ?= 127.0.0.1:1935
HTTP_BIND ?= 127.0.0.1:8082

FUZZ_SECONDS ?= 300
FUZZ_TARGET ?= all
FUZZ_SEED ?=

.PHONY: setup build run test test-suite lint format generate screenshots bench fuzz soak cluster-up cluster-down kind-up kind-down images e2e e2e-kind clean

setup:
	@hack/setup.sh

build: setup
	npx tsc -b
	node rtmpd/console/build.ts
	node rtmpd/bundle.ts

run: build
	npx rtmpd --rtmp-bind $(RTMP_BIND) --http-bind $(HTTP_BIND) \
	  --storage-dir ./data/rtmp/storage --keyframe-dir ./data/rtmp/keyframes --log-format pretty

lint: setup
	npx prettier --check --log-level warn .
	npx eslint .
	npx tsc -p tsconfig.check.json
	npx tsc -p rtmpd/console/tsconfig.json
	npx tsc -p rtmpd/console/test/tsconfig.json
	npx knip
	node --conditions=source hack/generate/main.ts --check
	hack/shellcheck.sh

# One whole suite at a time on a machine: runs from several checkouts would
# fight for the cores, the ports' time-outs and the kind cluster.
test: setup
	@exec 9>/tmp/flux-rtmpd-make-test.lock; \
	  flock -n 9 || { echo "make test: another make test runs on this machine; waiting for it"; flock 9; }; \
	  $(MAKE) --no-print-directory test-suite

# The vitest suites, then the kind e2e (real images, pods and volumes; cached builds).
# The control plane is built first: it keeps both cores busy, and vitest's cluster
# suites need it. The kind run's images and node image are then built while vitest
# runs (its tests leave a core idle much of the time), and the kind run finds them.
test-suite: build lint
	hack/k8s/build.sh >/dev/null
	hack/k8s/build.sh --adapter >/dev/null
	@log=$$(mktemp /tmp/flux-rtmpd-kind-prepare.XXXXXX); \
	  echo "make test: the kind run's images are built meanwhile (e2e/kind/run.sh --prepare, log $$log)"; \
	  e2e/kind/run.sh --prepare >"$$log" 2>&1 & prepare=$$!; \
	  npx vitest run; tests=$$?; \
	  if ! wait $$prepare; then tail -n 40 "$$log"; echo "make test: preparing the kind run failed (log $$log)"; exit 1; fi; \
	  tail -n 1 "$$log"; rm -f "$$log"; exit $$tests
	e2e/kind/run.sh

# Rewrites every file the formatter covers (make lint checks it).
format: setup
	npx prettier --write --log-level warn .

cluster-up: setup
	hack/cluster.sh up

cluster-down:
	hack/cluster.sh down

# A kind cluster of your own with the images loaded (no image registry needed):
# README, "On Kubernetes". Then: eval "$$(hack/kind-cluster.sh env)".
kind-up: setup
	hack/kind-cluster.sh up

kind-down:
	hack/kind-cluster.sh down

# Writes every file derived from a schema: the CRD and its chart copy, the chart
# README, the RBAC file, the options table in README.md and the operator's field
# reference (hack/generate/files.ts lists them; make lint checks they are current).
generate: setup
	node --conditions=source hack/generate/main.ts

# The README's console pictures: the browser tests (rtmpd with RTMPS and HTTPS on,
# two ffmpeg publishers, headless Chromium) take them into .artifacts/console/.
screenshots: setup
	npx vitest run --project console rtmpd/console/test/console.test.ts
	cp .artifacts/console/grid.png .artifacts/console/player.png rtmpd/console/screenshots/

# The journey on the local control plane: helm install, operator, RtmpServer, rtmpd, ffmpeg, API.
e2e: build
	npx vitest run --project chart --project e2e-local --project e2e-scripts

# The product on a kind cluster with the real images, built with no image registry
# (hack/): Docker, the images and the node image are installed and cached as needed.
e2e-kind: setup
	e2e/kind/run.sh

images: setup
	hack/images.sh

# The fuzzers for FUZZ_SECONDS each (make test runs short ones): the RTMP intake in-process
# (coverage-guided), then a real rtmpd over TCP and HTTP; FUZZ_TARGET=intake|tcp|http|all,
# FUZZ_SEED to repeat a run. What they find lands in rtmpd/test/fuzz/testdata/, to be checked in.
# After build: with the bundle older than a source, rtmpd runs from its TypeScript, which starts at
# about twice the bundle's RSS and peaks past the fuzzer's memory bound (docs/fuzzing.md).
fuzz: build
	node --conditions=source rtmpd/test/fuzz/main.ts --seconds $(FUZZ_SECONDS) --target $(FUZZ_TARGET) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# rtmpd for minutes under real publishers and players, churn, stalled players, hostile clients and
# periodic SIGKILL/restart; reports errors, RSS slope, descriptors and frames lost (SOAK_ARGS="--help").
soak: build
	node --conditions=source hack/soak/main.ts $(SOAK_ARGS)

# Load and latency benchmark: rtmpd vs node-media-server vs nginx-rtmp (BENCH_ARGS="--help" for options).
bench: build
	node --conditions=source hack/bench/main.ts $(BENCH_ARGS)

clean:
	rm -rf rtmpd/dist operator/dist ./*/tsconfig.tsbuildinfo
