# flux-rtmpd: the two commands a user needs are `make run` and `make test`;
# both install what they need first (hack/setup.sh is idempotent).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# npm's local bin first: it carries Node 24 (the `node` devDependency).
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

RTMP_BIND ?= 127.0.0.1:1935
HTTP_BIND ?= 127.0.0.1:8082

.PHONY: setup build run test lint format bench crds cluster-up cluster-down docs images e2e e2e-kind clean

setup:
	@hack/setup.sh

build: setup
	npx tsc -b

run: build
	npx rtmpd --rtmp-bind $(RTMP_BIND) --http-bind $(HTTP_BIND) \
	  --storage-dir ./data/rtmp/storage --keyframe-dir ./data/rtmp/keyframes --log-format pretty

lint: setup
	npx prettier --check --log-level warn .
	npx eslint .
	npx tsc -p tsconfig.check.json
	node --conditions=source operator/src/api/gen-crds.ts --check
	node --conditions=source hack/gen-chart-docs.ts --check

test: build lint
	npx vitest run

# Rewrites every file the formatter covers (make lint checks it).
format: setup
	npx prettier --write --log-level warn .

cluster-up: setup
	hack/cluster.sh up

cluster-down:
	hack/cluster.sh down

crds: setup
	node --conditions=source operator/src/api/gen-crds.ts
	node --conditions=source hack/gen-chart-docs.ts

docs: setup
	node hack/gen-docs.ts

# The journey on the local control plane: helm install, operator, RtmpServer, rtmpd, ffmpeg, API.
e2e: build
	npx vitest run --project chart --project e2e-local --project e2e-scripts

# The same journey on kind with the real images; needs Docker, kind, kubectl, helm, ffmpeg.
e2e-kind:
	e2e/kind/run.sh

images:
	hack/images.sh

# Load and latency benchmark: rtmpd vs node-media-server vs nginx-rtmp (BENCH_ARGS="--help" for options).
bench: build
	node --conditions=source hack/bench/main.ts $(BENCH_ARGS)

clean:
	rm -rf rtmpd/dist operator/dist ./*/tsconfig.tsbuildinfo
