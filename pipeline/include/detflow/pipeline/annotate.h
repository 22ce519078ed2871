// detflow/pipeline/annotate.h — drawing detections, tracks, lines and zones onto an image.
//
// Annotation never touches a shared Frame: callers draw into an image they own (a copy
// made once per frame, or the video writer's own output buffer, see copy_and_annotate).
// Only the boxes, lines, zone outlines and their captions are drawn; nothing else in the
// image is read or written. Colours come from a fixed palette indexed by class id, so a
// class keeps its colour across frames, runs and outputs.
// With tracking (AnnotationLayers): a detection that belongs to a track is captioned with its
// id ("person 0.87 #12"); a predicted box (a briefly lost track, or a frame the detector
// skipped) is drawn dashed; counting lines are drawn with an arrow towards their "in" side and
// "NAME in N out M"; zones as a polygon outline (another colour while occupied) with
// "NAME N inside, M entered".
// Cost: no allocation beyond the captions' short strings (no per-frame growth); drawing is
// proportional to the boxes, lines and zone edges.
// Thread-safety: stateless functions; safe to call from any thread on distinct images.
// Units: source pixels (the coordinates Detection, Track and the analytics settings carry).
#pragma once

#include <span>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "detflow/pipeline/frame.h"
#include "detflow/post/detection.h"
#include "detflow/track/analytics.h"
#include "detflow/track/event.h"
#include "detflow/track/tracker.h"

namespace detflow {

struct AnnotationStyle {
  int line_thickness = 2;      // box outline, pixels
  double font_scale = 0.5;     // cv::FONT_HERSHEY_SIMPLEX scale
  bool show_score = true;      // "person 0.87" instead of "person"
  bool show_label = true;      // false: boxes only
  bool show_track_id = true;   // "#12" after the caption of a tracked box
  bool show_analytics = true;  // counting lines and zones with their counts
};

// Everything drawn for one frame. Borrowed: the spans and pointers must stay valid during
// the drawing call only.
struct AnnotationLayers {
  std::span<const Detection> detections;
  std::span<const track::Track> tracks;                 // reported tracks; empty without tracking
  const track::AnalyticsSettings* analytics = nullptr;  // lines and zones to draw; null: none
  const track::CountsSnapshot* counts = nullptr;        // their counts; null: drawn without counts
  // The pixel space of the coordinates (the source frame's size); coordinates are scaled to
  // the canvas when it differs. Empty: the canvas's own size.
  cv::Size source_size;
};

// The layers of a pipeline result: its detections, tracks, lines, zones and counts, in the
// pixel space of its frame. The result must outlive the drawing.
AnnotationLayers annotation_layers(const FrameResult& result);

// The palette colour (BGR) of a class; negative ids get the first colour.
cv::Scalar class_colour(int class_id);

// The text drawn above a box: the label (or "class_N" when empty) and the score with two
// decimals, e.g. "person 0.87".
std::string detection_caption(const Detection& detection, const AnnotationStyle& style = {});

// A tracked box's caption: detection_caption's text for the track's label and score, then
// " #ID" (with style.show_track_id), e.g. "person 0.87 #12".
std::string track_caption(const track::Track& track, const AnnotationStyle& style = {});
// A line's caption, e.g. "door in 3 out 2" ("door" alone without counts).
std::string line_caption(const std::string& name, const track::LineCounts* counts);
// A zone's caption, e.g. "lobby 1 inside, 5 entered" ("lobby" alone without counts).
std::string zone_caption(const std::string& name, const track::ZoneCounts* counts);

// The colours of counting lines and of zones (empty / occupied), BGR.
cv::Scalar line_colour();
cv::Scalar zone_colour(bool occupied);

// Draws zones and lines (underneath), then the detections without a track, then the tracks
// (detected ones solid, predicted ones dashed), each captioned. Captions are kept inside the
// canvas; coordinates that are not finite are skipped.
void draw_annotations(cv::Mat& canvas, const AnnotationLayers& layers, const AnnotationStyle& style = {});

// Drawing only part of a canvas, with the same pixels as draw_annotations on the whole of it
// (a video writer that converts the untouched frame straight into its encoder's buffer and
// redraws just these parts, without a full-size copy):
// annotation_regions() returns disjoint rectangles of a canvas of `canvas_size` (corners at
// multiples of `alignment`, within the canvas) outside which draw_annotations draws nothing;
// draw_annotations_region() draws the part `region` of such a canvas onto `patch`
// (region.size(), already holding the canvas's pixels of that region) exactly as
// draw_annotations on the whole canvas changes those pixels, for a region
// annotation_regions() returned for the same layers, size and style.
std::vector<cv::Rect> annotation_regions(cv::Size canvas_size, const AnnotationLayers& layers,
                                         const AnnotationStyle& style = {}, int alignment = 1);
void draw_annotations_region(cv::Mat& patch, const cv::Rect& region, cv::Size canvas_size,
                             const AnnotationLayers& layers, const AnnotationStyle& style = {});

// Draws every detection onto `canvas` (8-bit, 3 channels), in the given order so the
// highest-scoring box (first) ends up underneath later ones' labels only where they
// overlap. Boxes partly outside the canvas are clipped; captions are kept inside it.
void draw_detections(cv::Mat& canvas, std::span<const Detection> detections, const AnnotationStyle& style = {});

// Copies `source` into `destination` (reallocated only when its size or type differs; it
// may wrap foreign memory such as an encoder buffer of the right size), then draws.
// `source` is only read.
void copy_and_annotate(const cv::Mat& source, std::span<const Detection> detections, cv::Mat& destination,
                       const AnnotationStyle& style = {});
// The same with every layer (draw_annotations).
void copy_and_annotate(const cv::Mat& source, const AnnotationLayers& layers, cv::Mat& destination,
                       const AnnotationStyle& style = {});

}  // namespace detflow
