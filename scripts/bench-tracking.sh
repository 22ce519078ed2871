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

# Line counts. Three references, because the ground truth's own count is not a stable one:
# - mot_line_counts.py --gt: it skips a step when either anchor lies exactly on the line, and
#   annotated anchors are whole or half pixels, so a person whose feet touch the line on the way
#   across is not counted (moving every box by 0.25 px changes 9/11/10/12 into 14/17/16/36);
# - people who end on the other side: ground-truth ids whose first and last anchors are on
#   opposite sides of the line (each crossed it at least once; a lower bound, jitter-free);
# - detflow on the ground truth's boxes: the same tracker and counter fed the annotated boxes as
#   detections, so the difference to det-medium/det-hard is the tracker's, not the definition's.
echo
echo "| sequence | line | mot_line_counts.py --gt | people ending on the other side | detflow on ground-truth boxes | detflow det-medium | detflow det-hard |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for sequence in MOT17-02 MOT17-04; do
  line_flags=()
  index=0
  for line in ${lines[$sequence]}; do line_flags+=(--line "line$index=$line"); index=$((index + 1)); done
  "$python" - "$tracking/$sequence/gt.txt" "$work/$sequence-truth-detections.txt" <<'PY'
import sys
rows = []
for text in open(sys.argv[1]):
    p = text.strip().split(",")
    if len(p) >= 8 and float(p[6]) != 0 and int(float(p[7])) == 1:
        rows.append((int(p[0]), f"{p[0]},-1,{p[2]},{p[3]},{p[4]},{p[5]},0.95,-1,-1,-1\n"))
rows.sort(key=lambda row: row[0])
open(sys.argv[2], "w").writelines(text for _, text in rows)
PY
  "$detflow" track --detections "$work/$sequence-truth-detections.txt" --fps "$(sed -n 's/^frameRate=//p' "$tracking/$sequence/seqinfo.ini")" \
    "${line_flags[@]}" --json "$@" >"$work/$sequence-truth.json"
  index=0
  for line in ${lines[$sequence]}; do
    truth="$("$python" "$tools/mot_line_counts.py" "$tracking/$sequence/gt.txt" --gt --line "$line")"
    "$python" - "$truth" "$tracking/$sequence/gt.txt" "$work/$sequence-truth.json" "$work/$sequence-det-medium.json" \
      "$work/$sequence-det-hard.json" "$sequence" "$line" "line$index" <<'PY'
import json, sys
from collections import defaultdict
truth = json.loads(sys.argv[1])
x1, y1, x2, y2 = map(float, sys.argv[7].split(","))
first_last = defaultdict(list)
for text in open(sys.argv[2]):
    p = text.strip().split(",")
    if len(p) < 8 or float(p[6]) == 0 or int(float(p[7])) != 1:
        continue
    x, y, w, h = map(float, p[2:6])
    first_last[int(p[1])].append((int(p[0]), x + w / 2, y + h))
ending = {"in": 0, "out": 0}
for points in first_last.values():
    points.sort()
    (_, ax, ay), (_, bx, by) = points[0], points[-1]
    side_a = (x2 - x1) * (ay - y1) - (y2 - y1) * (ax - x1)
    side_b = (x2 - x1) * (by - y1) - (y2 - y1) * (bx - x1)
    if side_a != 0 and side_b != 0 and (side_a > 0) != (side_b > 0):
        ending["in" if side_b < 0 else "out"] += 1
def counted(path):
    for line in json.load(open(path))["counts"]["lines"]:
        if line["name"] == sys.argv[8]:
            return line["in"], line["out"]
def cell(counts, against=None):
    total = counts[0] + counts[1]
    text = f"{total} ({counts[0]} in, {counts[1]} out"
    if against:
        text += f"; {100 * (total - against) / against:+.0f} %"
    return text + ")"
on_truth = counted(sys.argv[3])
reference = sum(on_truth)
print(f"| {sys.argv[6]} | {sys.argv[7]} | {cell((truth['in'], truth['out']))} | "
      f"{cell((ending['in'], ending['out']))} | {cell(on_truth)} | "
      f"{cell(counted(sys.argv[4]), reference)} | {cell(counted(sys.argv[5]), reference)} |")
PY
    index=$((index + 1))
  done
done
