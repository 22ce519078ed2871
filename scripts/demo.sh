#!/usr/bin/env bash
# scripts/demo.sh — the main job on the default inputs: detect, write an annotated video
# and JSON Lines, and say where they are and what is in them.
#
#   scripts/demo.sh                            BlazeFace faces on the cached faces.mp4
#   MODEL=yolov8n.onnx scripts/demo.sh         a COCO model on the cached vtest.avi
#   MODEL=... SOURCE=clip.mp4 FAMILY=yolov8    any video and family
#
# Outputs go to out/ in the repository (ignored by git): out/demo.mp4 and out/demo.jsonl,
# or out/demo-<model>.{mp4,jsonl} with MODEL. PRESET picks the build (default release).
# make demo bootstraps and builds first.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

preset="${PRESET:-release}"
detflow="$(detflow_executable "$preset")"
detflow_choose_demo_inputs

out="$DETFLOW_REPO_DIR/out"
mkdir -p "$out"
video="$out/$DEMO_NAME.mp4"
jsonl="$out/$DEMO_NAME.jsonl"
rm -f "$video" "$jsonl"

command=("$detflow" run --model "$DEMO_MODEL" --source "$DEMO_SOURCE" --output "$video" --json "$jsonl" --no-display)
[[ -z "$DEMO_FAMILY" ]] || command+=(--family "$DEMO_FAMILY")
[[ -z "$DEMO_LABELS" ]] || command+=(--labels "$DEMO_LABELS")
detflow_info "${command[*]}"
"${command[@]}" </dev/null || detflow_die "detflow run failed (exit status $?); the command is above"

[[ -s "$video" ]] || detflow_die "detflow run succeeded but wrote no $video"
[[ -s "$jsonl" ]] || detflow_die "detflow run succeeded but wrote no $jsonl"
frames="$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets \
  -of csv=p=0 "$video" 2>/dev/null || echo "unreadable")"
lines="$(wc -l <"$jsonl")"
# Detections per line: the length of the line's "detections" array.
detections="$(python3 - "$jsonl" 2>/dev/null <<'PY' || { grep -o '"score"' "$jsonl" || true; } | wc -l
import json, sys
total = 0
with open(sys.argv[1]) as lines:
    for line in lines:
        record = json.loads(line)
        total += len(record.get("detections", [])) if isinstance(record, dict) else 0
print(total)
PY
)"

echo
echo "annotated video: $video ($frames frames)"
echo "detections:      $jsonl ($lines lines, $detections detections)"
if [[ "$detections" == 0 ]]; then
  detflow_warn "no detections at all: check the model's family (FAMILY=...) and the source"
fi
