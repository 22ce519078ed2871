#!/usr/bin/env bash
# scripts/format.sh — clang-format (the repository's .clang-format) on the C++ files git tracks.
#
#   scripts/format.sh           rewrite them in place
#   scripts/format.sh --check   change nothing; list the files that need formatting and fail
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

detflow_require_command clang-format "apt-get install clang-format (scripts/bootstrap.sh system does)"
detflow_require_command git "apt-get install git"
cd "$DETFLOW_REPO_DIR"
mapfile -d '' files < <(git ls-files -z -- '*.cpp' '*.cc' '*.h' '*.hpp')
((${#files[@]})) || { detflow_info "no tracked C++ files"; exit 0; }

case "${1:-}" in
  "")
    clang-format -i --style=file "${files[@]}"
    detflow_info "formatted ${#files[@]} files"
    ;;
  --check)
    unformatted=()
    for file in "${files[@]}"; do
      clang-format --style=file --dry-run --Werror "$file" >/dev/null 2>&1 || unformatted+=("$file")
    done
    if ((${#unformatted[@]})); then
      printf '%s\n' "${unformatted[@]}" >&2
      detflow_die "${#unformatted[@]} of ${#files[@]} files need formatting: run make format"
    fi
    detflow_info "all ${#files[@]} files are formatted"
    ;;
  *) detflow_die "unknown option '$1'; accepted: --check" ;;
esac
