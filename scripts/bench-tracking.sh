#!/usr/bin/env bash
# scripts/bench-tracking.sh — `detflow track` on ../shared/tracking (MOT17-02, MOT17-04; det-medium
# and det-hard), scored with ../shared/tools/motmetrics.py (TrackEval's rules) and
# mot_line_counts.py, printed next to the official ByteTrack C++'s numbers on the same files.
# Speed per update comes from detflow_microbench --benchmark_filter=track_update (one thread).
# Needs a built detflow (PRESET, default release) and Python 3 with numpy and scipy.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

preset="${PRESET:-release}"
detflow="$(detflow_executable "$preset")"
shared="${DETFLOW_SHARED_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared}"
tracking="$shared/tracking"
tools="$shared/tools"
[[ -d "$tracking" ]] || detflow_die "no $tracking (../shared beside the repository)"
python=""
for candidate in python3 /usr/bin/python3; do
  if "$candidate" -c 'import numpy, scipy' 2>/dev/null; then python="$candidate"; break; fi
done
[[ -n "$python" ]] || detflow_die "python3 with numpy and scipy is missing (Debian: python3-numpy python3-scipy)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Official ByteTrack C++ (deploy code, default thresholds 0.5/0.6/0.8, buffer 30) on these files,
# from ../shared/tracking/README.md: MOTA IDF1 IDsw us-per-update.
declare -A bytetrack=(
  [MOT17-02/det-medium]="46.3 54.4 172 396" [MOT17-02/det-hard]="30.6 33.0 301 317"
  [MOT17-04/det-medium]="63.3 69.2 181 433" [MOT17-04/det-hard]="42.0 45.6 490 501"
)
# Counting lines (README) per sequence.
declare -A lines=([MOT17-02]="700,0,700,1080 1200,0,1200,1080" [MOT17-04]="0,600,1920,600 500,0,500,1080")

echo "| file | ByteTrack MOTA | detflow MOTA | ByteTrack IDF1 | detflow IDF1 | ByteTrack IDsw | detflow IDsw | detflow us/frame (whole command, incl. analytics) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for sequence in MOT17-02 MOT17-04; do
  for level in det-medium det-hard; do
    line_flags=()
    index=0
    for line in ${lines[$sequence]}; do line_flags+=(--line "line$index=$line"); index=$((index + 1)); done
    summary="$("$detflow" track --detections "$tracking/$sequence/$level.txt" --output "$work/$sequence-$level.txt" \
      "${line_flags[@]}" --json "$@")"
    echo "$summary" >"$work/$sequence-$level.json"
    scores="$("$python" "$tools/motmetrics.py" "$tracking/$sequence/gt.txt" "$work/$sequence-$level.txt" --json)"
    read -r b_mota b_idf1 b_idsw _ <<<"${bytetrack[$sequence/$level]}"
    "$python" - "$scores" "$summary" "$sequence/$level" "$b_mota" "$b_idf1" "$b_idsw" <<'PY'
import json, sys
scores, summary = json.loads(sys.argv[1]), json.loads(sys.argv[2])
name, b_mota, b_idf1, b_idsw = sys.argv[3:7]
print(f"| {name} | {b_mota} | {100 * scores['mota']:.1f} | {b_idf1} | {100 * scores['idf1']:.1f} | {b_idsw} | "
      f"{scores['id_switches']} | {summary['tracker_us_per_frame'] + summary['analytics_us_per_frame']:.1f} |")
PY
  done
done

echo
echo "| sequence | line | ground truth in+out | detflow det-medium | detflow det-hard |"
echo "| --- | --- | --- | --- | --- |"
for sequence in MOT17-02 MOT17-04; do
  index=0
  for line in ${lines[$sequence]}; do
    truth="$("$python" "$tools/mot_line_counts.py" "$tracking/$sequence/gt.txt" --gt --line "$line")"
    "$python" - "$truth" "$work/$sequence-det-medium.json" "$work/$sequence-det-hard.json" "$sequence" "$line" \
      "line$index" <<'PY'
import json, sys
truth = json.loads(sys.argv[1])
def counted(path, name):
    for line in json.load(open(path))["counts"]["lines"]:
        if line["name"] == name:
            total = line["in"] + line["out"]
            return f"{total} ({line['in']} in, {line['out']} out; {100 * (total - truth['total']) / truth['total']:+.0f} %)"
print(f"| {sys.argv[4]} | {sys.argv[5]} | {truth['total']} ({truth['in']} in, {truth['out']} out) | "
      f"{counted(sys.argv[2], sys.argv[6])} | {counted(sys.argv[3], sys.argv[6])} |")
PY
    index=$((index + 1))
  done
done
