#!/usr/bin/env bash
# scripts/bench.sh — `detflow bench` on the demo's model and video (or MODEL, SOURCE,
# FAMILY as for scripts/demo.sh). Extra arguments go to detflow bench unchanged.
# make bench builds first.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

preset="${PRESET:-release}"
detflow="$(detflow_executable "$preset")"
detflow_choose_demo_inputs

command=("$detflow" bench --model "$DEMO_MODEL" --source "$DEMO_SOURCE")
[[ -z "$DEMO_FAMILY" ]] || command+=(--family "$DEMO_FAMILY")
command+=("$@")
detflow_info "${command[*]}"
exec "${command[@]}" </dev/null
