#include "detflow/pipeline/engine_verify.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "detflow/error.h"
#include "detflow/pre/preprocess.h"

namespace detflow {
namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t axis = 0; axis < shape.size(); ++axis) text += (axis ? ", " : "") + std::to_string(shape[axis]);
  return text + "]";
}

std::string fixed(double value, int digits) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(digits) << value;
  return text.str();
}

// Two significant figures for differences that span 1e-7 to 1e3.
std::string compact(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2g", value);
  return buffer;
}

// "onnxruntime:cpu", "opencv:opencl": what an engine reports it runs on.
std::string running_on(const EngineReport& report) {
  std::string target = report.targets.empty() ? std::string("?") : report.targets.front();
  if (report.backend == "onnxruntime") {
    // ONNX Runtime names providers "CPUExecutionProvider"; detflow's own spelling is "cpu".
    const std::string suffix = "ExecutionProvider";
    if (target.ends_with(suffix)) target.resize(target.size() - suffix.size());
    std::transform(target.begin(), target.end(), target.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  return report.backend + ":" + target;
}

std::string running_on(const Engine& engine) { return running_on(engine.report()); }

double element_as_double(const Tensor& tensor, std::size_t index) {
  switch (tensor.type()) {
    case ElementType::float32:
      return tensor.data<float>()[index];
    case ElementType::float16:
      return half_to_float(tensor.data<std::uint16_t>()[index]);
    case ElementType::uint8:
      return tensor.data<std::uint8_t>()[index];
    case ElementType::int8:
      return tensor.data<std::int8_t>()[index];
    case ElementType::int32:
      return tensor.data<std::int32_t>()[index];
    case ElementType::int64:
      return static_cast<double>(tensor.data<std::int64_t>()[index]);
    case ElementType::boolean:
      return tensor.data<std::uint8_t>()[index] ? 1.0 : 0.0;
    case ElementType::unknown:
      break;
  }
  return 0.0;
}

OutputDifference compare_tensors(const Tensor& candidate, const Tensor& reference) {
  OutputDifference difference;
  difference.name = reference.name.empty() ? candidate.name : reference.name;
  difference.shape = candidate.shape();
  difference.reference_shape = reference.shape();
  difference.same_size = candidate.element_count() == reference.element_count();
  if (!difference.same_size) return difference;
  const std::size_t count = reference.element_count();
  double sum_difference = 0, sum_reference = 0;
  std::size_t finite_pairs = 0;
  for (std::size_t index = 0; index < count; ++index) {
    const double expected = element_as_double(reference, index);
    const double actual = element_as_double(candidate, index);
    if (!std::isfinite(expected)) continue;
    if (!std::isfinite(actual)) {
      ++difference.non_finite;
      continue;
    }
    const double gap = std::abs(actual - expected);
    difference.max_abs_difference = std::max(difference.max_abs_difference, gap);
    sum_difference += gap;
    sum_reference += std::abs(expected);
    ++finite_pairs;
  }
  if (finite_pairs > 0) {
    difference.mean_abs_difference = sum_difference / static_cast<double>(finite_pairs);
    difference.mean_abs_reference = sum_reference / static_cast<double>(finite_pairs);
  }
  return difference;
}

// The image preprocessed for one engine: the detector's spec with that engine's input type
// (ONNX Runtime takes float16 where an fp16 model says so; OpenCV always float32).
Tensor input_for(const DetectorSetup& detector, const Engine& engine, const cv::Mat& image, Geometry& geometry) {
  if (engine.inputs().empty()) throw Error("engine " + running_on(engine) + " reports no inputs");
  const TensorInfo& declared = engine.inputs().front();
  PreprocessSpec spec = detector.preprocess_spec();
  spec.type = declared.type;
  Preprocessor preprocessor(spec);
  Tensor tensor;
  preprocessor.prepare(tensor, 1);
  tensor.name = declared.name;
  geometry = preprocessor.run(image, tensor);
  return tensor;
}

struct Decoded {
  std::vector<Tensor> outputs;
  std::vector<Detection> detections;
};

Decoded run_and_decode(const DetectorSetup& detector, Engine& engine, const cv::Mat& image) {
  Geometry geometry;
  const Tensor input = input_for(detector, engine, image, geometry);
  Decoded decoded;
  engine.run(std::span<const Tensor>(&input, 1), decoded.outputs);
  detector.postprocess(decoded.outputs, geometry, decoded.detections);
  return decoded;
}

// Greedy matching (see the header), filling the detection fields of `comparison`.
void match_detections(const std::vector<Detection>& candidate, const std::vector<Detection>& reference,
                      const PostprocessOptions& options, const AgreementCriteria& criteria,
                      EngineComparison& comparison) {
  std::vector<std::size_t> order(candidate.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t left, std::size_t right) { return candidate[left].score > candidate[right].score; });
  std::vector<bool> reference_used(reference.size(), false);
  std::vector<bool> candidate_matched(candidate.size(), false);
  double score_gap_sum = 0;
  for (const std::size_t index : order) {
    const Detection& detection = candidate[index];
    double best_iou = criteria.iou_threshold;
    std::ptrdiff_t best = -1;
    for (std::size_t other = 0; other < reference.size(); ++other) {
      if (reference_used[other] || reference[other].class_id != detection.class_id) continue;
      // Identical boxes match even when degenerate (zero width or height), whose IoU is 0 by
      // definition: a broken export is the same broken export on both engines.
      const Detection& candidate_box = detection;
      const Detection& reference_box = reference[other];
      const auto close = [](float a, float b) { return std::abs(a - b) <= 1e-3f * std::max(1.0f, std::abs(b)); };
      const bool identical = close(candidate_box.x1, reference_box.x1) && close(candidate_box.y1, reference_box.y1) &&
                             close(candidate_box.x2, reference_box.x2) && close(candidate_box.y2, reference_box.y2);
      const double iou = identical ? 1.0 : intersection_over_union(candidate_box, reference_box);
      if (iou >= best_iou) {
        best_iou = iou;
        best = static_cast<std::ptrdiff_t>(other);
      }
    }
    if (best < 0) continue;
    reference_used[static_cast<std::size_t>(best)] = true;
    candidate_matched[index] = true;
    const double gap = std::abs(detection.score - reference[static_cast<std::size_t>(best)].score);
    score_gap_sum += gap;
    comparison.max_abs_score_difference = std::max(comparison.max_abs_score_difference, gap);
    ++comparison.matched;
  }
  const auto near_threshold = [&](const Detection& detection) {
    return detection.score < options.threshold_for(detection.class_id) + criteria.threshold_margin;
  };
  std::int64_t false_positives = 0, false_negatives = 0;
  for (std::size_t index = 0; index < candidate.size(); ++index) {
    if (candidate_matched[index]) continue;
    if (near_threshold(candidate[index])) {
      ++comparison.borderline;
    } else {
      ++false_positives;
    }
  }
  for (std::size_t index = 0; index < reference.size(); ++index) {
    if (reference_used[index]) continue;
    if (near_threshold(reference[index])) {
      ++comparison.borderline;
    } else {
      ++false_negatives;
    }
  }
  const auto matched = static_cast<double>(comparison.matched);
  comparison.precision = matched + static_cast<double>(false_positives) > 0
                             ? matched / (matched + static_cast<double>(false_positives))
                             : 1.0;
  comparison.recall = matched + static_cast<double>(false_negatives) > 0
                          ? matched / (matched + static_cast<double>(false_negatives))
                          : 1.0;
  comparison.f1 = comparison.precision + comparison.recall > 0
                      ? 2 * comparison.precision * comparison.recall / (comparison.precision + comparison.recall)
                      : 0.0;
  comparison.mean_abs_score_difference = comparison.matched > 0 ? score_gap_sum / matched : 0.0;
}

void decide(EngineComparison& comparison, const AgreementCriteria& criteria) {
  std::vector<std::string> problems;
  for (const auto& output : comparison.outputs) {
    if (!output.same_size) {
      problems.push_back("output " + output.name + " has shape " + shape_text(output.shape) +
                         " where onnxruntime has " + shape_text(output.reference_shape));
    } else if (output.non_finite > 0) {
      problems.push_back("output " + output.name + " has " + std::to_string(output.non_finite) +
                         " NaN/Inf values where onnxruntime's are finite");
    }
  }
  const bool nothing_detected = comparison.detections == 0 && comparison.reference_detections == 0;
  if (nothing_detected) {
    // No boxes to compare: the raw outputs must be close, relative to their magnitude.
    for (const auto& output : comparison.outputs) {
      if (!output.same_size) continue;
      const double allowed = criteria.max_relative_output_difference * output.mean_abs_reference;
      if (output.mean_abs_difference > allowed) {
        problems.push_back("nothing detected on either side, and output " + output.name + " differs by " +
                           compact(output.mean_abs_difference) + " on average (more than " +
                           compact(criteria.max_relative_output_difference * 100) + " % of its mean magnitude " +
                           compact(output.mean_abs_reference) + ")");
      }
    }
  } else {
    if (comparison.f1 < criteria.min_f1) {
      problems.push_back("F1 " + fixed(comparison.f1, 2) + " < " + fixed(criteria.min_f1, 2) + " (" +
                         std::to_string(comparison.matched) + " of " + std::to_string(comparison.reference_detections) +
                         " onnxruntime detections matched, " + std::to_string(comparison.detections) + " detected)");
    }
    if (comparison.mean_abs_score_difference > criteria.max_mean_score_difference) {
      problems.push_back("mean |score diff| " + fixed(comparison.mean_abs_score_difference, 3) + " > " +
                         fixed(criteria.max_mean_score_difference, 3));
    }
  }
  comparison.agrees = problems.empty();
  comparison.verdict = comparison.agrees ? "agree" : "differ";
  if (comparison.agrees) {
    comparison.reason = nothing_detected ? "nothing detected on either side; outputs within " +
                                               compact(criteria.max_relative_output_difference * 100) + " %"
                                         : std::to_string(comparison.matched) + " of " +
                                               std::to_string(comparison.reference_detections) +
                                               " detections matched, F1 " + fixed(comparison.f1, 3);
  } else {
    for (const auto& problem : problems) comparison.reason += (comparison.reason.empty() ? "" : "; ") + problem;
  }
}

EngineOptions onnxruntime_cpu_options(const DetectorSetup& detector) {
  EngineOptions options = detector.engine_options();
  options.backend = "onnxruntime";
  options.target = "cpu";
  options.providers.clear();
  return options;
}

// The reference engine, or detflow::Error saying why ONNX Runtime cannot serve as one.
std::unique_ptr<Engine> create_reference(const DetectorSetup& detector) {
  if (!onnxruntime_available()) {
    throw Error("engine verification compares with ONNX Runtime, which is not built into this detflow");
  }
  auto reference = create_engine(detector.model(), onnxruntime_cpu_options(detector));
  if (reference->report().backend != "onnxruntime") {
    const auto& notes = reference->report().notes;
    throw Error("ONNX Runtime cannot run '" + detector.model().path.string() + "' to compare with (" +
                (notes.empty() ? std::string("no reason given") : notes.back()) + ")");
  }
  return reference;
}

void warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> said;
  const std::lock_guard lock(mutex);
  if (said.insert(message).second) spdlog::warn("{}", message);
}

}  // namespace

cv::Mat synthetic_test_image(int width, int height) {
  if (width < 16 || height < 16) {
    throw Error("synthetic test image " + std::to_string(width) + "x" + std::to_string(height) +
                " is too small (expected at least 16x16)");
  }
  cv::Mat image(height, width, CV_8UC3);
  // A diagonal gradient: every pixel distinct enough to exercise the whole input range.
  for (int y = 0; y < height; ++y) {
    auto* row = image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      row[x] = cv::Vec3b(static_cast<std::uint8_t>(255 * x / width), static_cast<std::uint8_t>(255 * y / height),
                         static_cast<std::uint8_t>(128 + 64 * std::sin(0.05 * (x + y))));
    }
  }
  const auto at = [&](double fx, double fy) {
    return cv::Point(static_cast<int>(fx * width), static_cast<int>(fy * height));
  };
  // Objects of several sizes and colours, some overlapping, placed by fractions of the size.
  cv::rectangle(image, at(0.08, 0.15), at(0.30, 0.85), cv::Scalar(40, 40, 200), cv::FILLED);
  cv::rectangle(image, at(0.12, 0.20), at(0.26, 0.40), cv::Scalar(230, 220, 210), cv::FILLED);
  cv::ellipse(image, at(0.55, 0.35), cv::Size(width / 9, height / 6), 20, 0, 360, cv::Scalar(30, 160, 60), cv::FILLED);
  cv::circle(image, at(0.55, 0.35), std::min(width, height) / 20, cv::Scalar(0, 0, 0), cv::FILLED);
  cv::rectangle(image, at(0.62, 0.55), at(0.95, 0.80), cv::Scalar(20, 20, 20), cv::FILLED);
  cv::circle(image, at(0.68, 0.82), std::min(width, height) / 14, cv::Scalar(60, 60, 60), cv::FILLED);
  cv::circle(image, at(0.89, 0.82), std::min(width, height) / 14, cv::Scalar(60, 60, 60), cv::FILLED);
  const int cell = std::max(2, std::min(width, height) / 40);
  for (int y = static_cast<int>(0.05 * height); y < static_cast<int>(0.30 * height); y += cell) {
    for (int x = static_cast<int>(0.70 * width); x < static_cast<int>(0.95 * width); x += cell) {
      if (((x / cell) + (y / cell)) % 2 == 0) {
        cv::rectangle(image, cv::Point(x, y), cv::Point(x + cell - 1, y + cell - 1), cv::Scalar(250, 250, 250),
                      cv::FILLED);
      }
    }
  }
  cv::line(image, at(0.0, 0.95), at(1.0, 0.90), cv::Scalar(0, 220, 255), std::max(1, height / 80));
  return image;
}

VerifyInput verify_input_from(const std::filesystem::path& path) {
  VerifyInput input;
  if (path.empty()) {
    input.image = synthetic_test_image();
    input.description = "synthetic " + std::to_string(input.image.cols) + "x" + std::to_string(input.image.rows) +
                        " test pattern (no --image given)";
    return input;
  }
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) throw Error("image " + path.string() + ": no such file");
  input.image = cv::imread(path.string(), cv::IMREAD_COLOR);
  if (input.image.empty()) throw Error("image " + path.string() + " cannot be read as an image (PNG, JPEG, BMP, ...)");
  input.description =
      path.filename().string() + " (" + std::to_string(input.image.cols) + "x" + std::to_string(input.image.rows) + ")";
  return input;
}

EngineComparison compare_engines(const DetectorSetup& detector, Engine& reference, Engine& candidate,
                                 const cv::Mat& image, const std::string& engine, const AgreementCriteria& criteria) {
  EngineComparison comparison;
  comparison.engine = engine;
  comparison.running_on = running_on(candidate);
  Decoded expected;
  try {
    expected = run_and_decode(detector, reference, image);
  } catch (const std::exception& error) {
    throw Error("the reference engine " + running_on(reference) + " failed on the verification input: " + error.what());
  }
  comparison.reference_detections = static_cast<std::int64_t>(expected.detections.size());
  Decoded actual;
  try {
    actual = run_and_decode(detector, candidate, image);
  } catch (const std::exception& error) {
    comparison.error = error.what();
    comparison.verdict = "error";
    comparison.reason = "failed where onnxruntime ran: " + comparison.error;
    return comparison;
  }
  comparison.detections = static_cast<std::int64_t>(actual.detections.size());
  for (std::size_t index = 0; index < expected.outputs.size(); ++index) {
    if (index >= actual.outputs.size()) {
      OutputDifference missing;
      missing.name = expected.outputs[index].name;
      missing.reference_shape = expected.outputs[index].shape();
      comparison.outputs.push_back(std::move(missing));
      continue;
    }
    comparison.outputs.push_back(compare_tensors(actual.outputs[index], expected.outputs[index]));
  }
  match_detections(actual.detections, expected.detections, detector.postprocess_options(), criteria, comparison);
  decide(comparison, criteria);
  return comparison;
}

bool VerifyReport::all_agree() const {
  return std::all_of(engines.begin(), engines.end(), [](const EngineComparison& engine) { return engine.agrees; });
}

VerifyReport verify_engines(const DetectorSetup& detector, const VerifyInput& input,
                            const AgreementCriteria& criteria) {
  if (input.image.empty()) throw Error("engine verification: the input image is empty");
  VerifyReport report;
  report.model = detector.model().path.string();
  report.family = detector.family().family ? detector.family().family->name : std::string();
  report.input = input.description + ", " + std::to_string(detector.preprocess_spec().width) + "x" +
                 std::to_string(detector.preprocess_spec().height) + " model input";
  report.criteria = criteria;
  auto reference = create_reference(detector);
  report.reference = running_on(*reference);
  for (const auto& name : available_engines()) {
    if (name.starts_with("onnxruntime:")) continue;  // the reference, or a provider verified separately
    const auto separator = name.find(':');
    EngineOptions options = detector.engine_options();
    options.backend = name.substr(0, separator);
    options.target = name.substr(separator + 1);
    options.providers.clear();
    std::unique_ptr<Engine> candidate;
    try {
      candidate = create_engine(detector.model(), options);
    } catch (const std::exception& error) {
      EngineComparison failed;
      failed.engine = name;
      failed.error = error.what();
      failed.verdict = "error";
      failed.reason = "cannot load the model: " + failed.error;
      report.engines.push_back(std::move(failed));
      continue;
    }
    EngineComparison comparison = compare_engines(detector, *reference, *candidate, input.image, name, criteria);
    if (candidate->report().backend != options.backend) {
      // create_engine fell back to another backend: what ran is not the engine asked for.
      comparison.agrees = false;
      comparison.verdict = "error";
      comparison.error = name + " cannot load the model (fell back to " + comparison.running_on + ")";
      comparison.reason = comparison.error;
    } else if (comparison.running_on != name) {
      // A target fallback (OpenCL kernels that fail for this model run on the CPU): the
      // verdict is about what ran, and says so.
      comparison.reason = "ran on " + comparison.running_on + " (" + name + " fell back): " + comparison.reason;
    }
    report.reference_detections = comparison.reference_detections;
    report.engines.push_back(std::move(comparison));
  }
  if (report.engines.empty()) {
    // Only ONNX Runtime here: still report how many detections the input gives.
    Geometry geometry;
    const Tensor tensor = input_for(detector, *reference, input.image, geometry);
    std::vector<Tensor> outputs;
    reference->run(std::span<const Tensor>(&tensor, 1), outputs);
    std::vector<Detection> detections;
    detector.postprocess(outputs, geometry, detections);
    report.reference_detections = static_cast<std::int64_t>(detections.size());
  }
  return report;
}

nlohmann::json to_json(const VerifyReport& report) {
  nlohmann::json engines = nlohmann::json::array();
  for (const auto& engine : report.engines) {
    nlohmann::json outputs = nlohmann::json::array();
    for (const auto& output : engine.outputs) {
      outputs.push_back({{"name", output.name},
                         {"shape", output.shape},
                         {"reference_shape", output.reference_shape},
                         {"same_size", output.same_size},
                         {"max_abs_diff", output.max_abs_difference},
                         {"mean_abs_diff", output.mean_abs_difference},
                         {"mean_abs_reference", output.mean_abs_reference},
                         {"non_finite", output.non_finite}});
    }
    engines.push_back({{"engine", engine.engine},
                       {"running_on", engine.running_on},
                       {"verdict", engine.verdict},
                       {"agrees", engine.agrees},
                       {"reason", engine.reason},
                       {"error", engine.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(engine.error)},
                       {"detections", engine.detections},
                       {"reference_detections", engine.reference_detections},
                       {"matched", engine.matched},
                       {"borderline", engine.borderline},
                       {"precision", engine.precision},
                       {"recall", engine.recall},
                       {"f1", engine.f1},
                       {"mean_abs_score_diff", engine.mean_abs_score_difference},
                       {"max_abs_score_diff", engine.max_abs_score_difference},
                       {"outputs", outputs}});
  }
  return {{"model", report.model},
          {"family", report.family},
          {"input", report.input},
          {"reference", report.reference},
          {"reference_detections", report.reference_detections},
          {"criteria",
           {{"iou_threshold", report.criteria.iou_threshold},
            {"min_f1", report.criteria.min_f1},
            {"max_mean_score_diff", report.criteria.max_mean_score_difference},
            {"threshold_margin", report.criteria.threshold_margin},
            {"max_relative_output_diff", report.criteria.max_relative_output_difference}}},
          {"engines", engines},
          {"all_agree", report.all_agree()}};
}

std::string to_text(const VerifyReport& report) {
  std::ostringstream out;
  out << "engine verification: " << report.model << " (" << report.family << ")\n";
  out << "input: " << report.input << "\n";
  out << "reference: " << report.reference << ", " << report.reference_detections << " detections\n";
  if (report.engines.empty()) {
    out << "no other engine on this machine to compare\n";
    return out.str();
  }
  const auto pad = [](const std::string& text, std::size_t width) {
    return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
  };
  out << pad("engine", 16) << pad("verdict", 9) << pad("F1", 7) << pad("found", 7) << pad("matched", 9)
      << pad("border", 8) << pad("mean|dscore|", 14) << "max|dscore|\n";
  for (const auto& engine : report.engines) {
    out << pad(engine.engine, 16) << pad(engine.verdict, 9);
    if (engine.verdict == "error") {
      out << engine.reason << "\n";
      continue;
    }
    out << pad(fixed(engine.f1, 3), 7) << pad(std::to_string(engine.detections), 7)
        << pad(std::to_string(engine.matched), 9) << pad(std::to_string(engine.borderline), 8)
        << pad(fixed(engine.mean_abs_score_difference, 4), 14) << fixed(engine.max_abs_score_difference, 4) << "\n";
  }
  out << "outputs against " << report.reference << " (max |diff|, mean |diff|, mean |reference|):\n";
  for (const auto& engine : report.engines) {
    for (const auto& output : engine.outputs) {
      out << "  " << pad(engine.engine, 16) << pad(output.name, 12) << pad(shape_text(output.shape), 18);
      if (!output.same_size) {
        out << "size differs from " << shape_text(output.reference_shape) << "\n";
        continue;
      }
      out << pad(compact(output.max_abs_difference), 10) << pad(compact(output.mean_abs_difference), 10)
          << compact(output.mean_abs_reference);
      if (output.non_finite > 0) out << "  (" << output.non_finite << " NaN/Inf)";
      out << "\n";
    }
  }
  for (const auto& engine : report.engines) {
    if (engine.verdict == "differ") out << engine.engine << " differs: " << engine.reason << "\n";
  }
  out << (report.all_agree() ? "verdict: every engine agrees with " : "verdict: engines differ from ")
      << report.reference << "\n";
  return out.str();
}

std::string first_frame_message(const EngineComparison& comparison) {
  const std::string advice = "; the boxes may be wrong — use --engine onnxruntime, or engine.verify: off to silence";
  if (comparison.verdict == "error") {
    return "engine " + comparison.engine + " failed on the first frame where onnxruntime ran (" + comparison.error +
           ")" + advice;
  }
  return "engine " + comparison.engine + " differs from onnxruntime on the first frame: F1 " + fixed(comparison.f1, 2) +
         ", max |score diff| " + fixed(comparison.max_abs_score_difference, 2) + " (" + comparison.reason + ")" +
         advice;
}

EngineComparison enforce_engine_agreement(const DetectorSetup& detector, Engine& reference, Engine& candidate,
                                          const cv::Mat& frame, VerifyMode mode, const AgreementCriteria& criteria) {
  if (mode == VerifyMode::off) {
    EngineComparison skipped;
    skipped.engine = running_on(candidate);
    skipped.verdict = "skipped";
    return skipped;
  }
  EngineComparison comparison = compare_engines(detector, reference, candidate, frame, running_on(candidate), criteria);
  if (comparison.agrees) {
    spdlog::debug("engine {} agrees with onnxruntime on the first frame: {}", comparison.engine, comparison.reason);
    return comparison;
  }
  const std::string message = first_frame_message(comparison);
  if (mode == VerifyMode::strict) throw Error(ErrorKind::verification, message + " (engine.verify: strict)");
  warn_once(message);
  return comparison;
}

std::string first_frame_check_skipped(const DetectorSetup& detector, VerifyMode mode) {
  if (mode == VerifyMode::off) return "engine.verify: off";
  if (detector.engine_report().backend == "onnxruntime") return "the engine is ONNX Runtime, the reference itself";
  if (!onnxruntime_available()) return "ONNX Runtime, the reference, is not built into this detflow";
  return {};
}

PrefetchedSource::PrefetchedSource(std::unique_ptr<Source> inner) : inner_(std::move(inner)) {
  if (!inner_) throw Error("prefetched source: no source given");
  has_first_ = inner_->read(first_);
}

bool PrefetchedSource::read(Frame& frame) {
  if (has_first_ && !first_handed_out_) {
    first_handed_out_ = true;
    frame.image = first_.image;
    frame.pts_ms = first_.pts_ms;
    frame.name = first_.name;
    first_ = Frame{};  // the pipeline owns the pixels from here on
    return true;
  }
  return inner_->read(frame);
}

std::unique_ptr<Source> verify_on_first_frame(DetectorSetup& detector, std::unique_ptr<Source> source,
                                              VerifyMode mode) {
  const std::string skipped = first_frame_check_skipped(detector, mode);
  if (!skipped.empty()) {
    spdlog::debug("engine check on the first frame skipped: {}", skipped);
    return source;
  }
  auto prefetched = std::make_unique<PrefetchedSource>(std::move(source));
  const Frame* first = prefetched->first_frame();
  if (first == nullptr || first->image.empty()) {
    spdlog::debug("engine check on the first frame skipped: the source gave no frame");
    return prefetched;
  }
  std::unique_ptr<Engine> reference;
  try {
    reference = create_reference(detector);
  } catch (const Error& error) {
    spdlog::info("engine {} not checked against onnxruntime: {}", running_on(detector.engine_report()), error.what());
    return prefetched;
  }
  const std::unique_ptr<Engine> candidate = detector.make_engine();
  enforce_engine_agreement(detector, *reference, *candidate, first->image, mode);
  return prefetched;
}

}  // namespace detflow
