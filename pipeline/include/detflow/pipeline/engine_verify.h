// detflow/pipeline/engine_verify.h — do the engines on this machine compute the same
// detections as ONNX Runtime?
//
// OpenCV DNN can load a model and still compute it differently (OpenCV 4.6 on YOLO11's
// attention block gave F1 0.52 against ONNX Runtime), and nobody can check boxes by eye on
// every model. So detflow runs the engine a user chose and ONNX Runtime on the same input
// and compares, at two levels:
//   outputs     per output tensor: max and mean |candidate - reference| (element by element,
//               float16 read as float), and the mean |reference| to judge them by;
//   detections  both decoded by the same DetectorSetup (same thresholds, NMS, geometry),
//               then matched greedily: candidates by descending score, each to the unused
//               reference detection of the same class with the highest IoU >= 0.5.
//               Precision, recall, F1 over matched pairs; mean and max |score difference|
//               over matched pairs. An unmatched detection whose score is within
//               AgreementCriteria::threshold_margin of the score threshold is "borderline"
//               (the other engine scored it just below the threshold) and counts neither way.
// Verdict: the engines agree when F1 >= min_f1 and the mean |score difference| <=
// max_mean_score_difference; when neither side detects anything the outputs decide (mean
// |diff| <= max_relative_output_difference x mean |reference|).
//
// Used by `detflow inspect MODEL --verify` (every available engine, table or JSON) and by
// `detflow run` on the first frame when the engine is not ONNX Runtime (engine.verify:
// warn | strict | off). Engines are loaded at setup time, never in the per-frame path.
// Thread-safety: the functions use the engines they are given from the calling thread only;
// DetectorSetup is used through its const members.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>

#include "detflow/inference/engine.h"
#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/source.h"

namespace detflow {

enum class VerifyMode { warn, strict, off };

struct AgreementCriteria {
  double iou_threshold = 0.5;
  double min_f1 = 0.99;
  double max_mean_score_difference = 0.02;
  double threshold_margin = 0.02;                // score units around the score threshold
  double max_relative_output_difference = 0.01;  // only when nothing is detected on either side
};

struct OutputDifference {
  std::string name;
  std::vector<std::int64_t> shape;            // the candidate's
  std::vector<std::int64_t> reference_shape;  // ONNX Runtime's
  bool same_size = false;                     // same element count (values are compared in order)
  double max_abs_difference = 0;
  double mean_abs_difference = 0;
  double mean_abs_reference = 0;
  std::int64_t non_finite = 0;  // NaN or infinity in the candidate where the reference is finite
};

struct EngineComparison {
  std::string engine;      // as requested, e.g. "opencv:opencl"
  std::string running_on;  // what actually ran (backend:target), e.g. "opencv:cpu" after a fallback
  std::string error;       // non-empty when the engine could not load or run the model
  std::vector<OutputDifference> outputs;
  std::int64_t detections = 0;            // the candidate's
  std::int64_t reference_detections = 0;  // ONNX Runtime's
  std::int64_t matched = 0;
  std::int64_t borderline = 0;  // unmatched, within the margin of the score threshold
  double precision = 1, recall = 1, f1 = 1;
  double mean_abs_score_difference = 0;
  double max_abs_score_difference = 0;
  bool agrees = false;
  std::string verdict;  // "agree", "differ", or "error"
  std::string reason;   // one line: why it differs (or what agreed)
};

// The input every engine receives: one image preprocessed the model's way.
struct VerifyInput {
  cv::Mat image;            // 8-bit BGR
  std::string description;  // e.g. "people.jpg (1280x720)" or "synthetic 640x480 test pattern"
};

// A deterministic picture with something in it: a gradient background, coloured
// rectangles, ellipses and a checkerboard, the same on every machine and run.
cv::Mat synthetic_test_image(int width = 640, int height = 480);

// The image at `path` (any format OpenCV reads), or synthetic_test_image() when the path is
// empty. Throws detflow::Error naming the file when it cannot be read as an image.
VerifyInput verify_input_from(const std::filesystem::path& path);

// Runs `reference` and `candidate` on `image` (preprocessed per engine: the same pixels,
// each engine's input element type), decodes both with `detector` and compares them.
// `engine` names the candidate in the result. Never throws for an engine that fails to run
// (error and verdict "error" are set); throws detflow::Error when the reference fails.
EngineComparison compare_engines(const DetectorSetup& detector, Engine& reference, Engine& candidate,
                                 const cv::Mat& image, const std::string& engine,
                                 const AgreementCriteria& criteria = {});

struct VerifyReport {
  std::string model;
  std::string family;
  std::string input;      // VerifyInput::description and the model input size
  std::string reference;  // "onnxruntime:cpu"
  std::int64_t reference_detections = 0;
  AgreementCriteria criteria;
  std::vector<EngineComparison> engines;  // every available engine but the reference
  bool all_agree() const;
};

// `detflow inspect --verify`: loads every engine available_engines() lists (ONNX Runtime
// other than cpu excluded) exactly, without fallback, and compares each with ONNX Runtime
// on the CPU. Throws detflow::Error when ONNX Runtime is not built in or cannot run the model.
VerifyReport verify_engines(const DetectorSetup& detector, const VerifyInput& input,
                            const AgreementCriteria& criteria = {});

nlohmann::json to_json(const VerifyReport& report);
// A table: one block per engine with its verdict, then one row per output.
std::string to_text(const VerifyReport& report);

// The one-line warning (and strict error) `detflow run` gives for a differing engine, e.g.
// "engine opencv:opencl differs from onnxruntime on the first frame: F1 0.52, max |score
// diff| 0.11; the boxes may be wrong — use --engine onnxruntime, or engine.verify: off to
// silence".
std::string first_frame_message(const EngineComparison& comparison);

// `detflow run`'s check: compares `candidate` with `reference` on `frame`. Agree: one debug
// line. Differ: warn logs first_frame_message() once; strict throws detflow::Error with it;
// off does nothing (returns a comparison with verdict "skipped"). A candidate that fails to
// run is reported the same way as a difference.
EngineComparison enforce_engine_agreement(const DetectorSetup& detector, Engine& reference, Engine& candidate,
                                          const cv::Mat& frame, VerifyMode mode,
                                          const AgreementCriteria& criteria = {});

// Why `detflow run` skips the check for this setup (off, ONNX Runtime already in use, ONNX
// Runtime not built in), or empty when it applies.
std::string first_frame_check_skipped(const DetectorSetup& detector, VerifyMode mode);

// A source whose first frame was read ahead (so `detflow run` can check the engines on it
// before the pipeline starts); read() hands that frame out first, then reads on.
// Thread-safety as Source: read() from one thread, stop() from any.
class PrefetchedSource final : public Source {
 public:
  // Reads the first frame now (blocks until a live source delivers one).
  explicit PrefetchedSource(std::unique_ptr<Source> inner);
  // The frame read ahead, or nullptr when the source ended before delivering one.
  const Frame* first_frame() const { return has_first_ ? &first_ : nullptr; }

  const SourceInfo& info() const override { return inner_->info(); }
  bool read(Frame& frame) override;
  void stop() override { inner_->stop(); }
  SourceCounters counters() const override { return inner_->counters(); }

 private:
  std::unique_ptr<Source> inner_;
  Frame first_;
  bool has_first_ = false;
  bool first_handed_out_ = false;
};

// `detflow run`'s whole check: when first_frame_check_skipped() is empty, wraps `source`
// in a PrefetchedSource, loads ONNX Runtime and an engine like the pipeline's (from
// detector.make_engine()) and calls enforce_engine_agreement() on the first frame.
// Returns the source to run (the same frames, none lost). Throws detflow::Error in strict
// mode when the engines differ.
std::unique_ptr<Source> verify_on_first_frame(DetectorSetup& detector, std::unique_ptr<Source> source, VerifyMode mode);

}  // namespace detflow
