// detflow/pipeline/annotate.h — drawing detections onto an image.
//
// Annotation never touches a shared Frame: callers draw into an image they own (a copy
// made once per frame, or the video writer's own output buffer, see copy_and_annotate).
// Only the boxes and their labels are drawn; nothing else in the image is read or written.
// Colours come from a fixed palette indexed by class id, so a class keeps its colour across
// frames, runs and outputs.
// Thread-safety: stateless functions; safe to call from any thread on distinct images.
// Units: source pixels (the coordinates Detection carries).
#pragma once

#include <span>
#include <string>

#include <opencv2/core.hpp>

#include "detflow/post/detection.h"

namespace detflow {

struct AnnotationStyle {
  int line_thickness = 2;   // box outline, pixels
  double font_scale = 0.5;  // cv::FONT_HERSHEY_SIMPLEX scale
  bool show_score = true;   // "person 0.87" instead of "person"
  bool show_label = true;   // false: boxes only
};

// The palette colour (BGR) of a class; negative ids get the first colour.
cv::Scalar class_colour(int class_id);

// The text drawn above a box: the label (or "class_N" when empty) and the score with two
// decimals, e.g. "person 0.87".
std::string detection_caption(const Detection& detection, const AnnotationStyle& style = {});

// Draws every detection onto `canvas` (8-bit, 3 channels), in the given order so the
// highest-scoring box (first) ends up underneath later ones' labels only where they
// overlap. Boxes partly outside the canvas are clipped; captions are kept inside it.
void draw_detections(cv::Mat& canvas, std::span<const Detection> detections, const AnnotationStyle& style = {});

// Copies `source` into `destination` (reallocated only when its size or type differs; it
// may wrap foreign memory such as an encoder buffer of the right size), then draws.
// `source` is only read.
void copy_and_annotate(const cv::Mat& source, std::span<const Detection> detections, cv::Mat& destination,
                       const AnnotationStyle& style = {});

}  // namespace detflow
