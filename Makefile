# detflow — set-up, build, test and demo entry points (the work is done by scripts/).
#
#   make demo     bootstrap, build, run the face detector on the demo video (out/demo.mp4, out/demo.jsonl)
#   make test     bootstrap, build, run the whole test suite through ctest
#
# Variables: PRESET=release|debug|asan (build/PRESET), JOBS=N (default: the number of
# cores), MODEL=path.onnx, SOURCE=video/camera/URL, FAMILY=name (demo and bench).

PRESET ?= release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MODEL ?=
SOURCE ?=
FAMILY ?=

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# What the demo and bench scripts read.
demo_environment = PRESET="$(PRESET)" MODEL="$(MODEL)" SOURCE="$(SOURCE)" FAMILY="$(FAMILY)"

.DEFAULT_GOAL := build
.PHONY: demo test build bootstrap bench format format-check clean help

help:
	@sed -n '1,/^$$/p' Makefile
	@echo "targets: demo test build bootstrap bench format format-check clean"

bootstrap:
	scripts/bootstrap.sh

build: bootstrap
	JOBS="$(JOBS)" scripts/build.sh "$(PRESET)"

test: build
	JOBS="$(JOBS)" scripts/test.sh "$(PRESET)"

# The demo and the bench only need the command line, not the tests and benchmarks.
demo: bootstrap
	JOBS="$(JOBS)" scripts/build.sh "$(PRESET)" detflow
	$(demo_environment) scripts/demo.sh

bench: bootstrap
	JOBS="$(JOBS)" scripts/build.sh "$(PRESET)" detflow
	$(demo_environment) scripts/bench.sh

format:
	scripts/format.sh

format-check:
	scripts/format.sh --check

# Build folders of the presets and the demo outputs; the download cache (~/.cache/detflow)
# is kept: it is verified and slow to fetch again.
clean:
	rm -rf build/release build/debug build/asan out
