#!/usr/bin/env bash
# scripts/bench-1080p.sh — `detflow bench --output-video` on a 1920x1080 clip, as a new user with
# a full-HD camera would try it. No 1080p clip ships with detflow, so the first run makes one:
# vtest.avi (768x576, 10 fps, 795 frames of pedestrians; Debian's opencv-doc, cached by
# scripts/bootstrap.sh assets, else ../shared/media) upscaled bilinearly to 1920x1080 by
# GStreamer and encoded as H.264 (veryfast, 8 Mbit/s) into out/vtest-1080p.mp4, reused after.
# With the same GStreamer and x264 versions the clip is the same on every machine.
#
# MODEL (default ../shared/models/yolox_nano.onnx, the model of the bench's targets) and
# PRESET (default release) as for scripts/bench.sh; extra arguments go to detflow bench
# unchanged, e.g. --json bench-1080p.json or --streams 4.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

preset="${PRESET:-release}"
detflow="$(detflow_executable "$preset")"
shared="${DETFLOW_SHARED_DIR:-$DETFLOW_REPO_DIR/../shared}"
model="${MODEL:-$shared/models/yolox_nano.onnx}"
[[ -f "$model" ]] || detflow_die "model $model: no such file (set MODEL=path.onnx)"

input="$DETFLOW_ASSETS_DIR/vtest.avi"
[[ -f "$input" ]] || input="$shared/media/vtest.avi"
[[ -f "$input" ]] || detflow_die "no vtest.avi: run scripts/bootstrap.sh assets (or put ../shared beside the repository)"
clip="$DETFLOW_REPO_DIR/out/vtest-1080p.mp4"
if [[ ! -s "$clip" ]]; then
  detflow_require_command gst-launch-1.0 "GStreamer's command-line tools (Debian: gstreamer1.0-tools)"
  mkdir -p "$(dirname "$clip")"
  detflow_info "making $clip from $input (1920x1080, H.264)"
  partial="$clip.partial.mp4"
  gst-launch-1.0 -q filesrc location="$input" ! decodebin ! videoconvert ! videoscale method=bilinear \
    ! video/x-raw,width=1920,height=1080,format=I420 \
    ! x264enc speed-preset=veryfast bitrate=8000 threads=2 ! h264parse ! mp4mux ! filesink location="$partial"
  mv "$partial" "$clip"
fi

command=("$detflow" bench --model "$model" --source "$clip" --output-video "$@")
detflow_info "${command[*]}"
exec "${command[@]}" </dev/null
