#include "detflow/pipeline/annotate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace detflow {

namespace {

// Twenty well-separated colours (BGR), the same hues Ultralytics uses, so outputs look
// familiar next to other tools.
constexpr std::array<std::array<unsigned char, 3>, 20> palette{{
    {56, 56, 255},  {151, 157, 255}, {31, 112, 255}, {29, 178, 255}, {49, 210, 207},  {10, 249, 72},  {23, 204, 146},
    {134, 219, 61}, {52, 147, 26},   {187, 212, 0},  {168, 153, 44}, {255, 194, 0},   {147, 69, 52},  {255, 115, 100},
    {236, 24, 0},   {255, 56, 132},  {133, 0, 82},   {255, 56, 203}, {200, 149, 255}, {199, 55, 255},
}};

constexpr int font_face = cv::FONT_HERSHEY_SIMPLEX;

// Where the drawing goes, in canvas pixels: the whole of an image, or the part `region` of a
// larger canvas held by a patch image (each primitive translated by the region's corner), or
// nowhere while the rectangles each primitive may change are collected (its footprint).
// A primitive is drawn on a patch only when its footprint meets the region; the regions come
// from merged footprints, so such a primitive lies wholly inside and OpenCV draws it exactly
// as on the whole canvas (rasterisation is invariant under whole-pixel translation; only
// clipping would differ, and nothing is clipped).
class Painter {
 public:
  explicit Painter(cv::Mat& image) : image_(&image), size_(image.size()), region_(0, 0, image.cols, image.rows) {}
  Painter(cv::Mat& patch, cv::Rect region, cv::Size canvas_size)
      : image_(&patch), size_(canvas_size), region_(region) {}
  Painter(cv::Size canvas_size, std::vector<cv::Rect>& footprints) : size_(canvas_size), footprints_(&footprints) {}

  int cols() const { return size_.width; }
  int rows() const { return size_.height; }

  // cv::rectangle. An outline's footprint is its four edges (with the caps of thick lines), so
  // what lies inside the box can go to another region.
  void rectangle(cv::Point a, cv::Point b, const cv::Scalar& colour, int thickness, int line_type) {
    if (thickness < 0) {
      if (visit(around(a, b, 1))) cv::rectangle(*image_, a - at(), b - at(), colour, thickness, line_type);
      return;
    }
    const int margin = thickness / 2 + 2;
    const bool meets = visit(around(a, {b.x, a.y}, margin)) | visit(around({b.x, a.y}, b, margin)) |
                       visit(around(b, {a.x, b.y}, margin)) | visit(around({a.x, b.y}, a, margin));
    if (meets) cv::rectangle(*image_, a - at(), b - at(), colour, thickness, line_type);
  }
  void line(cv::Point a, cv::Point b, const cv::Scalar& colour, int thickness, int line_type) {
    if (visit(around(a, b, thickness / 2 + 2))) cv::line(*image_, a - at(), b - at(), colour, thickness, line_type);
  }
  // cv::arrowedLine: the head's two strokes are tip_length * |b - a| long, from b.
  void arrowed_line(cv::Point a, cv::Point b, const cv::Scalar& colour, int thickness, int line_type,
                    double tip_length) {
    const int head = static_cast<int>(std::ceil(tip_length * std::hypot(b.x - a.x, b.y - a.y)));
    const bool meets = visit(around(a, b, thickness / 2 + 2)) |
                       visit(around(b - cv::Point(head, head), b + cv::Point(head, head), thickness / 2 + 2));
    if (meets) cv::arrowedLine(*image_, a - at(), b - at(), colour, thickness, line_type, 0, tip_length);
  }
  // cv::putText with FONT_HERSHEY_SIMPLEX: the glyphs stay within the text size plus the
  // stroke (a margin of half the height covers the strokes that reach beyond it).
  void text(const std::string& text, cv::Point origin, double scale, const cv::Scalar& colour, int thickness) {
    int baseline = 0;
    const cv::Size size = cv::getTextSize(text, font_face, scale, thickness, &baseline);
    const int margin = thickness + 2 + size.height / 2;
    const cv::Rect box(origin.x, origin.y - size.height, size.width, size.height + baseline);
    if (visit(cv::Rect(box.x - margin, box.y - margin, box.width + 2 * margin, box.height + 2 * margin))) {
      cv::putText(*image_, text, origin - at(), font_face, scale, colour, thickness, cv::LINE_AA);
    }
  }

 private:
  static cv::Rect around(cv::Point a, cv::Point b, int margin) {
    const cv::Point low(std::min(a.x, b.x) - margin, std::min(a.y, b.y) - margin);
    const cv::Point high(std::max(a.x, b.x) + margin + 1, std::max(a.y, b.y) + margin + 1);
    return {low, high};
  }
  cv::Point at() const { return region_.tl(); }
  // Collecting: records the footprint (its part on the canvas) and returns false. Drawing:
  // whether the footprint meets the region.
  bool visit(const cv::Rect& footprint) {
    if (footprints_) {
      const cv::Rect on_canvas = footprint & cv::Rect(cv::Point(0, 0), size_);
      if (!on_canvas.empty()) footprints_->push_back(on_canvas);
      return false;
    }
    return !(footprint & region_).empty();
  }

  cv::Mat* image_ = nullptr;
  cv::Size size_;
  cv::Rect region_;
  std::vector<cv::Rect>* footprints_ = nullptr;
};

int clamp_to(int value, int low, int high) { return std::max(low, std::min(value, high)); }

// Dark text on light colours and light text on dark ones keeps captions readable.
cv::Scalar text_colour_on(const cv::Scalar& background) {
  const double luminance = 0.114 * background[0] + 0.587 * background[1] + 0.299 * background[2];
  return luminance > 150 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
}

// Source pixels to canvas pixels.
struct Scale {
  double x = 1, y = 1;
};

Scale scale_between(const cv::Size& source, const Painter& canvas) {
  if (source.width <= 0 || source.height <= 0) return {};
  return {static_cast<double>(canvas.cols()) / source.width, static_cast<double>(canvas.rows()) / source.height};
}

bool finite(float x, float y) { return std::isfinite(x) && std::isfinite(y); }

// Rounded and bounded (far-away points stay far away without overflowing int).
cv::Point to_canvas(float x, float y, const Scale& scale) {
  constexpr double limit = 1 << 20;
  return {static_cast<int>(std::lround(std::clamp(static_cast<double>(x) * scale.x, -limit, limit))),
          static_cast<int>(std::lround(std::clamp(static_cast<double>(y) * scale.y, -limit, limit)))};
}

// The part of a segment within the canvas (and a margin of `margin` pixels around it), so
// OpenCV never rasterises far-away geometry; false when none of it is.
bool clip_to_canvas(const Painter& canvas, int margin, cv::Point& a, cv::Point& b) {
  return cv::clipLine(cv::Rect(-margin, -margin, canvas.cols() + 2 * margin, canvas.rows() + 2 * margin), a, b);
}

// A caption on a filled background in `colour`, its top-left corner at `corner` moved as
// little as needed to keep it whole inside the canvas.
void draw_label(Painter& canvas, const std::string& text, cv::Point corner, const cv::Scalar& colour,
                const AnnotationStyle& style, int text_thickness) {
  int baseline = 0;
  const cv::Size text_size = cv::getTextSize(text, font_face, style.font_scale, text_thickness, &baseline);
  const int label_height = text_size.height + baseline + 4;
  const int top = clamp_to(corner.y, 0, std::max(0, canvas.rows() - label_height));
  const int left = clamp_to(corner.x, 0, std::max(0, canvas.cols() - text_size.width - 4));
  const cv::Rect background(left, top, std::min(text_size.width + 4, canvas.cols() - left),
                            std::min(label_height, canvas.rows() - top));
  if (background.area() > 0)
    canvas.rectangle(background.tl(), background.br() - cv::Point(1, 1), colour, cv::FILLED, cv::LINE_8);
  canvas.text(text, cv::Point(left + 2, top + text_size.height + 2), style.font_scale, text_colour_on(colour),
              text_thickness);
}

// Dashes about three line widths long with gaps as long (the thick line's caps shorten the
// gaps a little), from a to b.
void dashed_line(Painter& canvas, cv::Point a, cv::Point b, const cv::Scalar& colour, int thickness) {
  const double length = std::hypot(b.x - a.x, b.y - a.y);
  const double dash = std::max(6, 3 * thickness);
  const double period = dash * 2;
  for (double position = 0; position < length; position += period) {
    const double end = std::min(length, position + dash);
    const cv::Point from(a.x + static_cast<int>(std::lround((b.x - a.x) * position / length)),
                         a.y + static_cast<int>(std::lround((b.y - a.y) * position / length)));
    const cv::Point to(a.x + static_cast<int>(std::lround((b.x - a.x) * end / length)),
                       a.y + static_cast<int>(std::lround((b.y - a.y) * end / length)));
    canvas.line(from, to, colour, thickness, cv::LINE_8);
  }
}

// One box (source pixels) with its caption above it; dashed for predicted boxes.
void draw_box(Painter& canvas, float box_x1, float box_y1, float box_x2, float box_y2, const Scale& scale,
              const cv::Scalar& colour, bool dashed, const std::string* caption, const AnnotationStyle& style) {
  // NaN or infinite coordinates would make OpenCV draw across the whole image.
  if (!finite(box_x1, box_y1) || !finite(box_x2, box_y2)) return;
  const double left = box_x1 * scale.x, top = box_y1 * scale.y;
  const double right = box_x2 * scale.x, bottom = box_y2 * scale.y;
  const int width = canvas.cols();
  const int height = canvas.rows();
  // Entirely outside: clamping would draw a misleading sliver on the edge.
  if (right < 0 || bottom < 0 || left >= width || top >= height) return;
  const int x1 = clamp_to(static_cast<int>(std::lround(left)), 0, width - 1);
  const int y1 = clamp_to(static_cast<int>(std::lround(top)), 0, height - 1);
  const int x2 = clamp_to(static_cast<int>(std::lround(right)), 0, width - 1);
  const int y2 = clamp_to(static_cast<int>(std::lround(bottom)), 0, height - 1);
  if (x2 < x1 || y2 < y1) return;
  const int thickness = std::max(1, style.line_thickness);
  const int text_thickness = std::max(1, thickness / 2);
  if (dashed) {
    dashed_line(canvas, {x1, y1}, {x2, y1}, colour, thickness);
    dashed_line(canvas, {x2, y1}, {x2, y2}, colour, thickness);
    dashed_line(canvas, {x2, y2}, {x1, y2}, colour, thickness);
    dashed_line(canvas, {x1, y2}, {x1, y1}, colour, thickness);
  } else {
    // Axis-aligned edges barely show anti-aliasing, which costs several times more to draw;
    // text keeps it, where it shows.
    canvas.rectangle(cv::Point(x1, y1), cv::Point(x2, y2), colour, thickness, cv::LINE_8);
  }
  if (!caption) return;
  int baseline = 0;
  const cv::Size text_size = cv::getTextSize(*caption, font_face, style.font_scale, text_thickness, &baseline);
  const int label_height = text_size.height + baseline + 4;
  // Above the box when there is room, else just inside its top edge; never off-canvas.
  int label_top = y1 - label_height;
  if (label_top < 0) label_top = std::min(y1, height - label_height);
  draw_label(canvas, *caption, {x1, std::max(label_top, 0)}, colour, style, text_thickness);
}

const track::LineCounts* find_line(const track::CountsSnapshot* counts, const std::string& name, std::size_t index) {
  if (!counts) return nullptr;
  if (index < counts->lines.size() && counts->lines[index].name == name) return &counts->lines[index];
  for (const auto& line : counts->lines) {
    if (line.name == name) return &line;
  }
  return nullptr;
}

const track::ZoneCounts* find_zone(const track::CountsSnapshot* counts, const std::string& name, std::size_t index) {
  if (!counts) return nullptr;
  if (index < counts->zones.size() && counts->zones[index].name == name) return &counts->zones[index];
  for (const auto& zone : counts->zones) {
    if (zone.name == name) return &zone;
  }
  return nullptr;
}

// Lines and zones are drawn in two parts: their shapes under the boxes, their captions (the live
// counts) over them, so a crowd's labels never hide the counts.
enum class AnalyticsPart { shape, caption };

// The shape: the segment and an arrow from its middle towards the "in" side; the caption: the
// counts at its start. "in" is where (P2 - P1) x (anchor - P1) < 0 (track/event.h): along (dy, -dx), y down.
void draw_counting_line(Painter& canvas, const track::LineSettings& line, const track::LineCounts* counts,
                        const Scale& scale, const AnnotationStyle& style, AnalyticsPart part) {
  if (!finite(line.start.x, line.start.y) || !finite(line.end.x, line.end.y)) return;
  const int thickness = std::max(1, style.line_thickness);
  const cv::Scalar colour = line_colour();
  if (part == AnalyticsPart::caption) {
    const cv::Point caption_corner = to_canvas(line.start.x, line.start.y, scale) + cv::Point(4, 4);
    draw_label(canvas, line_caption(line.name, counts), caption_corner, colour, style, std::max(1, thickness / 2));
    return;
  }
  // The visible part, with the arrow at its middle.
  cv::Point start = to_canvas(line.start.x, line.start.y, scale);
  cv::Point end = to_canvas(line.end.x, line.end.y, scale);
  const bool visible = clip_to_canvas(canvas, thickness, start, end);
  if (visible) canvas.line(start, end, colour, thickness, cv::LINE_AA);
  const double length = std::hypot(end.x - start.x, end.y - start.y);
  if (visible && length >= 1) {
    const double arrow = std::max(12, 6 * thickness);
    const cv::Point middle((start.x + end.x) / 2, (start.y + end.y) / 2);
    const cv::Point tip(middle.x + static_cast<int>(std::lround((end.y - start.y) / length * arrow)),
                        middle.y - static_cast<int>(std::lround((end.x - start.x) / length * arrow)));
    canvas.arrowed_line(middle, tip, colour, thickness, cv::LINE_AA, 0.4);
  }
}

// The shape: the polygon's outline; the caption: the counts inside its top-left corner.
void draw_zone(Painter& canvas, const track::ZoneSettings& zone, const track::ZoneCounts* counts, const Scale& scale,
               const AnnotationStyle& style, AnalyticsPart part) {
  if (zone.polygon.size() < 2) return;
  for (const auto& point : zone.polygon) {
    if (!finite(point.x, point.y)) return;
  }
  const cv::Scalar colour = zone_colour(counts && counts->occupancy() > 0);
  const int thickness = std::max(1, style.line_thickness);
  cv::Point top_left = to_canvas(zone.polygon.front().x, zone.polygon.front().y, scale);
  for (std::size_t index = 0; index < zone.polygon.size(); ++index) {
    const auto& from = zone.polygon[index];
    const auto& to = zone.polygon[(index + 1) % zone.polygon.size()];
    const cv::Point corner = to_canvas(from.x, from.y, scale);
    top_left.x = std::min(top_left.x, corner.x);
    top_left.y = std::min(top_left.y, corner.y);
    if (part == AnalyticsPart::caption) continue;
    cv::Point a = corner;
    cv::Point b = to_canvas(to.x, to.y, scale);
    if (clip_to_canvas(canvas, thickness, a, b)) canvas.line(a, b, colour, thickness, cv::LINE_AA);
  }
  if (part == AnalyticsPart::shape) return;
  draw_label(canvas, zone_caption(zone.name, counts), {top_left.x + thickness + 2, top_left.y + thickness + 2}, colour,
             style, std::max(1, thickness / 2));
}

}  // namespace

cv::Scalar class_colour(int class_id) {
  const auto& colour = palette[static_cast<std::size_t>(std::max(class_id, 0)) % palette.size()];
  return {static_cast<double>(colour[0]), static_cast<double>(colour[1]), static_cast<double>(colour[2])};
}

std::string detection_caption(const Detection& detection, const AnnotationStyle& style) {
  std::string caption = detection.label.empty() ? "class_" + std::to_string(detection.class_id) : detection.label;
  if (style.show_score) {
    char score[16];
    std::snprintf(score, sizeof score, " %.2f", static_cast<double>(detection.score));
    caption += score;
  }
  return caption;
}

void draw_detections(cv::Mat& image, std::span<const Detection> detections, const AnnotationStyle& style) {
  if (image.empty()) return;
  Painter canvas(image);
  std::string caption;
  for (const Detection& detection : detections) {
    if (style.show_label) caption = detection_caption(detection, style);
    draw_box(canvas, detection.x1, detection.y1, detection.x2, detection.y2, {}, class_colour(detection.class_id),
             false, style.show_label ? &caption : nullptr, style);
  }
}

std::string track_caption(const track::Track& track, const AnnotationStyle& style) {
  Detection detection;
  detection.class_id = track.class_id;
  detection.label = track.label;
  detection.score = track.score;
  std::string caption = detection_caption(detection, style);
  if (style.show_track_id) caption += " #" + std::to_string(track.id);
  return caption;
}

std::string line_caption(const std::string& name, const track::LineCounts* counts) {
  if (!counts) return name;
  return name + " in " + std::to_string(counts->in()) + " out " + std::to_string(counts->out());
}

std::string zone_caption(const std::string& name, const track::ZoneCounts* counts) {
  if (!counts) return name;
  return name + " " + std::to_string(counts->occupancy()) + " inside, " + std::to_string(counts->entered()) +
         " entered";
}

cv::Scalar line_colour() { return {0, 255, 255}; }  // yellow

cv::Scalar zone_colour(bool occupied) {
  return occupied ? cv::Scalar(0, 128, 255) : cv::Scalar(255, 255, 0);  // orange when occupied, else cyan
}

AnnotationLayers annotation_layers(const FrameResult& result) {
  AnnotationLayers layers;
  layers.detections = result.detections;
  layers.tracks = result.tracks;
  layers.analytics = result.analytics;
  layers.counts = result.counts;
  if (result.frame) layers.source_size = result.frame->image.size();
  return layers;
}

namespace {

void draw_layers(Painter& canvas, const AnnotationLayers& layers, const AnnotationStyle& style) {
  const Scale scale = scale_between(layers.source_size, canvas);
  const auto draw_analytics = [&](AnalyticsPart part) {
    if (!style.show_analytics || !layers.analytics) return;
    for (std::size_t index = 0; index < layers.analytics->zones.size(); ++index) {
      const auto& zone = layers.analytics->zones[index];
      draw_zone(canvas, zone, find_zone(layers.counts, zone.name, index), scale, style, part);
    }
    for (std::size_t index = 0; index < layers.analytics->lines.size(); ++index) {
      const auto& line = layers.analytics->lines[index];
      draw_counting_line(canvas, line, find_line(layers.counts, line.name, index), scale, style, part);
    }
  };
  draw_analytics(AnalyticsPart::shape);
  std::string caption;
  // Detections that no track reports (tentative, or below the tracker's thresholds).
  for (std::size_t index = 0; index < layers.detections.size(); ++index) {
    const bool tracked = std::any_of(layers.tracks.begin(), layers.tracks.end(), [index](const track::Track& track) {
      return track.detection_index == static_cast<int>(index);
    });
    if (tracked) continue;
    const Detection& detection = layers.detections[index];
    if (style.show_label) caption = detection_caption(detection, style);
    draw_box(canvas, detection.x1, detection.y1, detection.x2, detection.y2, scale, class_colour(detection.class_id),
             false, style.show_label ? &caption : nullptr, style);
  }
  for (const track::Track& track : layers.tracks) {
    if (style.show_label) caption = track_caption(track, style);
    draw_box(canvas, track.box.x1, track.box.y1, track.box.x2, track.box.y2, scale, class_colour(track.class_id),
             track.predicted, style.show_label ? &caption : nullptr, style);
  }
  draw_analytics(AnalyticsPart::caption);
}

// The rectangle grown outwards to multiples of `alignment`, within the canvas.
cv::Rect aligned(const cv::Rect& rect, int alignment, const cv::Rect& canvas) {
  const auto down = [alignment](int value) { return value / alignment * alignment; };
  const auto up = [alignment](int value) { return (value + alignment - 1) / alignment * alignment; };
  const cv::Point low(down(rect.x), down(rect.y));
  const cv::Point high(up(rect.x + rect.width), up(rect.y + rect.height));
  return cv::Rect(low, high) & canvas;
}

}  // namespace

void draw_annotations(cv::Mat& canvas, const AnnotationLayers& layers, const AnnotationStyle& style) {
  if (canvas.empty()) return;
  Painter painter(canvas);
  draw_layers(painter, layers, style);
}

std::vector<cv::Rect> annotation_regions(cv::Size canvas_size, const AnnotationLayers& layers,
                                         const AnnotationStyle& style, int alignment) {
  std::vector<cv::Rect> regions;
  if (canvas_size.width <= 0 || canvas_size.height <= 0) return regions;
  Painter collector(canvas_size, regions);
  draw_layers(collector, layers, style);
  const cv::Rect canvas(cv::Point(0, 0), canvas_size);
  alignment = std::max(1, alignment);
  for (auto& region : regions) region = aligned(region, alignment, canvas);
  // Overlapping footprints become one region (drawn on one patch, in drawing order); repeated
  // until no two regions overlap, since a grown region can reach one already passed.
  for (bool merged = true; merged;) {
    merged = false;
    for (std::size_t first = 0; first < regions.size(); ++first) {
      for (std::size_t other = first + 1; other < regions.size();) {
        if ((regions[first] & regions[other]).empty()) {
          ++other;
          continue;
        }
        regions[first] = aligned(regions[first] | regions[other], alignment, canvas);
        regions.erase(regions.begin() + static_cast<std::ptrdiff_t>(other));
        other = first + 1;
        merged = true;
      }
    }
  }
  return regions;
}

void draw_annotations_region(cv::Mat& patch, const cv::Rect& region, cv::Size canvas_size,
                             const AnnotationLayers& layers, const AnnotationStyle& style) {
  if (patch.empty()) return;
  Painter painter(patch, region, canvas_size);
  draw_layers(painter, layers, style);
}

void copy_and_annotate(const cv::Mat& source, std::span<const Detection> detections, cv::Mat& destination,
                       const AnnotationStyle& style) {
  // copyTo reuses destination's memory when size and type match, so a Mat wrapping an
  // encoder buffer is filled in place.
  source.copyTo(destination);
  draw_detections(destination, detections, style);
}

void copy_and_annotate(const cv::Mat& source, const AnnotationLayers& layers, cv::Mat& destination,
                       const AnnotationStyle& style) {
  source.copyTo(destination);
  draw_annotations(destination, layers, style);
}

}  // namespace detflow
