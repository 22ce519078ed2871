# detflow — set-up, build, test and demo entry points (the work is done by scripts/).
#
#   make demo     bootstrap, build, run the face detector on the demo video (out/demo.mp4, out/demo.jsonl)
#   make test     bootstrap, build, run the whole test suite through ctest (with a bounded
#                 smoke run of each fuzzer when clang is installed)
#   make fuzz     build the libFuzzer targets (clang, build/fuzz) and run each FUZZ_SECONDS
#
# Variables: PRESET=release|debug|asan|arm64 (build/PRESET; arm64 cross-compiles and tests under qemu), JOBS=N (default: the number of
# cores), MODEL=path.onnx, SOURCE=video/camera/URL, FAMILY=name (demo and bench),
# FUZZ_SECONDS=N (default 60) and FUZZ_TARGETS="config labels ..." (default all) for make fuzz.

PRESET ?= release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MODEL ?=
SOURCE ?=
FAMILY ?=
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# What the demo and bench scripts read.
demo_environment = PRESET="$(PRESET)" MODEL="$(MODEL)" SOURCE="$(SOURCE)" FAMILY="$(FAMILY)"

.DEFAULT_GOAL := build
.PHONY: demo test build bootstrap bench fuzz format format-check clean help

help:
	@sed -n '1,/^$$/p' Makefile
	@echo "targets: demo test build bootstrap bench fuzz format format-check clean"

bootstrap:
	scripts/bootstrap.sh

build: bootstrap
	JOBS="$(JOBS)" scripts/build.sh "$(PRESET)"

# The fuzz preset first, so that ctest's FuzzSmoke tests find the fuzzers (they skip without
# clang, and fail if it did not build).
test: build
	if [[ "$(PRESET)" != arm64 ]]; then JOBS="$(JOBS)" scripts/fuzz.sh build-for-tests; fi
	JOBS="$(JOBS)" scripts/test.sh "$(PRESET)"

fuzz: bootstrap
	FUZZ_SECONDS="$(FUZZ_SECONDS)" JOBS="$(JOBS)" scripts/fuzz.sh run $(FUZZ_TARGETS)

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
	rm -rf build/release build/debug build/asan build/fuzz out
