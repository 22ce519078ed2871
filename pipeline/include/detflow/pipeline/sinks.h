// detflow/pipeline/sinks.h — the sinks detflow ships, and their factory.
//
//   video   annotated video file through GStreamer (appsrc ! videoconvert ! encoder ! mux !
//           filesink). The container follows the extension:
//             .mp4  H.264 (x264, ultrafast, zero latency) in fragmented MP4 (1 s fragments),
//                   so a file cut short by a full disk or a kill still plays up to the last
//                   whole fragment; finish() writes the closing index.
//             .mkv  H.264 in Matroska.
//             .avi  Motion JPEG in AVI.
//           Size: the source's (SourceInfo, else the first frame's); later frames of another
//           size (image folders) are resized to it. Rate: the source's frame rate, 30 fps
//           when the source does not know it (images, some cameras). Frames are stamped
//           n / rate, so the file plays at the source's rate whatever the processing speed.
//   images  one annotated image per frame in a folder, under the frame's file name
//           (image sources) or frame_NNNNNN.jpg (video sources). The folder is created
//           when its parent exists.
//   window  cv::imshow with annotations; 'q' or Esc (or closing the window) makes
//           consume() return false, a clean stop. Only created when a display exists.
//   jsonl   JSON Lines, one object per frame, written with one write(2) per line so a kill
//           leaves only whole lines:
//             {"frame": 0, "pts_ms": 0.0, "width": 768, "height": 576,
//              "detections": [{"box": [x1, y1, x2, y2], "score": 0.91, "class": 0, "label": "person"}]}
//           pts_ms is null when the source does not know it. A failed frame adds
//           "failed": true and "reason": "...". A frame the detector skipped (detection
//           interval) adds "detector_ran": false; its boxes are the tracks' predictions.
//           With tracking, detections gain "track_id"; predicted boxes "predicted": true.
//           The end-of-stream result (no frame) writes no line. Boxes are in source
//           pixels (the format ../shared/tools/detmatch.py reads).
//           Runs that last: with JsonLinesOptions::rotate_bytes > 0 the file is rotated
//           before a line would take it past that size (out.jsonl -> out.jsonl.1 -> ...
//           out.jsonl.<keep>, the oldest deleted), so at most keep + 1 files of at most
//           rotate_bytes each exist. A full disk (ENOSPC, EDQUOT) does not end the run:
//           the line is lost and counted (FileOutputCounters), a warning is logged once
//           per episode, and writing resumes by itself when space returns (the partial
//           line a short write left is cut off first, so the file keeps only whole lines).
//
// Errors: open() throws detflow::Error when the output cannot be created; consume() throws
// detflow::Error naming the path when writing fails (disk full for video and images; I/O
// errors for all); what was written before stays readable.
//
// Thread-safety: the pipeline calls open/consume/finish from one thread. In addition,
// finish() of the file sinks (video, images, jsonl) may be called from another thread at
// any time (the command line's emergency exit on a second signal): it waits for a
// consume() in progress, completes the file and makes later calls no-ops. finish() is
// idempotent and is also run by the destructor, so every exit path completes the file.
// The window sink's finish() only closes the window when called from the thread that
// showed it.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "detflow/pipeline/annotate.h"
#include "detflow/pipeline/sink.h"

namespace detflow {

enum class DisplayMode {
  automatic,  // a window when a display exists (DISPLAY or WAYLAND_DISPLAY set), else none
  on,         // a window; detflow::Error when there is no display
  off,        // never a window
};

// What a file output lost while running without ending the run (JSON Lines on a full
// disk). Atomics: written by the sink's thread, read by exporters from any thread.
struct FileOutputCounters {
  std::atomic<std::int64_t> lines_written{0};
  std::atomic<std::int64_t> lines_lost{0};  // not written because the disk was full
  std::atomic<std::int64_t> rotations{0};
  std::atomic<bool> disk_full{false};  // the last write failed for lack of space
};

struct JsonLinesOptions {
  std::uint64_t rotate_bytes = 0;                // > 0: rotate before a file would exceed this many bytes
  int rotate_keep = 5;                           // rotated files kept beside the current one (>= 1)
  std::shared_ptr<FileOutputCounters> counters;  // optional; shared with exporters
};

struct SinkSettings {
  std::filesystem::path video;          // annotated video (.mp4, .mkv, .avi); empty: none
  std::filesystem::path json;           // JSON Lines; empty: none
  std::uint64_t json_rotate_bytes = 0;  // see JsonLinesOptions
  int json_rotate_keep = 5;
  std::shared_ptr<FileOutputCounters> json_counters;  // optional, see JsonLinesOptions
  std::filesystem::path images;                       // folder for annotated images; empty: none
  std::filesystem::path mot;                          // tracks in MOTChallenge text (needs tracking); empty: none
  std::filesystem::path events;                       // tracking events as JSON Lines (needs tracking); empty: none
  DisplayMode display = DisplayMode::automatic;
  std::string window_title = "detflow";
  AnnotationStyle style;
};

// The annotated outputs (video, images, window) draw AnnotationLayers of each result: boxes,
// track ids, predicted boxes dashed, lines and zones with their counts (annotate.h).

// Frame rate written when the source does not report one.
inline constexpr double default_video_fps = 30.0;

// True when DISPLAY or WAYLAND_DISPLAY is set and not empty.
bool display_available();

// Up-front checks, so a run fails before any processing: the file's folder must exist and
// be writable, the path must not be a directory, and (video) the extension must be
// .mp4, .mkv or .avi. Throws detflow::Error naming `what` ("video output", ...) and the path.
void check_output_file(const std::filesystem::path& path, const std::string& what);
// The folder must exist and be writable, or not exist with a writable parent.
void check_output_folder(const std::filesystem::path& folder, const std::string& what);
// All of the above for every output in `settings`, and DisplayMode::on without a display.
void check_sink_settings(const SinkSettings& settings);

std::unique_ptr<Sink> make_video_sink(const std::filesystem::path& path, const AnnotationStyle& style = {});
std::unique_ptr<Sink> make_image_folder_sink(const std::filesystem::path& folder, const AnnotationStyle& style = {});
std::unique_ptr<Sink> make_jsonl_sink(const std::filesystem::path& path, const JsonLinesOptions& options = {});
// With tracking: MOTChallenge rows frame,id,x,y,w,h,score,class,-1,-1 (frame = index + 1) for
// every reported track, and the events as JSON Lines (track/event.h), flushed per frame.
std::unique_ptr<Sink> make_mot_sink(const std::filesystem::path& path);
std::unique_ptr<Sink> make_events_sink(const std::filesystem::path& path);
// Throws detflow::Error when no display is available.
std::unique_ptr<Sink> make_window_sink(const std::string& title, const AnnotationStyle& style = {});

// The sinks `settings` asks for, in a fixed order: video, images, jsonl, window. Runs
// check_sink_settings() first.
std::vector<std::unique_ptr<Sink>> make_sinks(const SinkSettings& settings);

}  // namespace detflow
