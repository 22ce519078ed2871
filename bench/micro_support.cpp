#include "micro_support.h"

#include <cstdlib>
#include <iomanip>
#include <map>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "detflow/error.h"

namespace detflow::bench::micro {
namespace {

struct Pair {
  std::string name;
  std::string baseline_description;
};

std::vector<Pair>& pairs() {
  static std::vector<Pair> registered;
  return registered;
}

// Seconds per iteration by benchmark name; medians override single runs.
struct Timing {
  double seconds = 0;
  bool from_median = false;
};
std::map<std::string, Timing>& timings() {
  static std::map<std::string, Timing> measured;
  return measured;
}

cv::Mat synthetic_scene() {
  // Deterministic: a textured background with blobs, so resizing does real work.
  cv::Mat scene(576, 768, CV_8UC3);
  cv::RNG random(12345);
  random.fill(scene, cv::RNG::UNIFORM, cv::Scalar::all(40), cv::Scalar::all(200));
  cv::GaussianBlur(scene, scene, cv::Size(7, 7), 2.0);
  for (int blob = 0; blob < 30; ++blob) {
    const cv::Point centre(random.uniform(0, 768), random.uniform(0, 576));
    cv::ellipse(scene, centre, cv::Size(random.uniform(8, 30), random.uniform(20, 60)), 0, 0, 360,
                cv::Scalar(random.uniform(0, 255), random.uniform(0, 255), random.uniform(0, 255)), cv::FILLED);
  }
  return scene;
}

}  // namespace

std::optional<std::filesystem::path> shared_file(const std::string& relative) {
  const char* override_directory = std::getenv("DETFLOW_SHARED_DIR");
  const std::filesystem::path directory =
      override_directory != nullptr && *override_directory != '\0' ? override_directory : DETFLOW_BENCH_SHARED_DIR;
  const std::filesystem::path path = directory / relative;
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return std::nullopt;
  return path;
}

const cv::Mat& test_frame() {
  static const cv::Mat frame = [] {
    if (const auto video = shared_file("media/vtest.avi")) {
      cv::VideoCapture capture(video->string());
      cv::Mat first;
      if (capture.read(first) && first.type() == CV_8UC3) return first.clone();
    }
    return synthetic_scene();
  }();
  return frame;
}

const RealRun* real_run(const std::string& model_file, const std::string& image_file, std::string& why) {
  static std::map<std::string, std::unique_ptr<RealRun>> runs;
  static std::map<std::string, std::string> failures;
  const std::string key = model_file + "|" + image_file;
  if (const auto found = runs.find(key); found != runs.end()) return found->second.get();
  if (const auto failed = failures.find(key); failed != failures.end()) {
    why = failed->second;
    return nullptr;
  }
  const auto model = shared_file("models/" + model_file);
  const auto image_path = shared_file("media/" + image_file);
  if (!model || !image_path) {
    why = "needs ../shared/models/" + model_file + " and ../shared/media/" + image_file;
    failures[key] = why;
    return nullptr;
  }
  try {
    auto run = std::make_unique<RealRun>();
    ModelSettings settings;
    settings.path = *model;
    EngineOptions engine;
    engine.intra_op_threads = 1;
    run->setup = std::make_unique<DetectorSetup>(settings, engine);
    run->image = cv::imread(image_path->string(), cv::IMREAD_COLOR);
    if (run->image.empty()) throw Error("cannot read " + image_path->string());
    Preprocessor preprocessor(run->setup->preprocess_spec());
    Tensor input = run->setup->make_input_tensor();
    run->geometry = preprocessor.run(run->image, input);
    std::unique_ptr<Engine> engine_instance = run->setup->make_engine();
    engine_instance->run(std::span<const Tensor>(&input, 1), run->outputs);
    return (runs[key] = std::move(run)).get();
  } catch (const std::exception& error) {
    why = model_file + ": " + error.what();
    failures[key] = why;
    return nullptr;
  }
}

void register_pair(const std::string& name, const std::string& baseline_description, BenchmarkBody detflow,
                   BenchmarkBody baseline, int repetitions) {
  pairs().push_back({name, baseline_description});
  for (auto& [suffix, body] : {std::pair{":detflow", detflow}, std::pair{":baseline", baseline}}) {
    auto* benchmark = benchmark::RegisterBenchmark((name + suffix).c_str(), body);
    benchmark->Unit(benchmark::kMicrosecond)->UseRealTime();
    if (repetitions > 1) benchmark->Repetitions(repetitions)->ReportAggregatesOnly(true);
  }
}

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const auto& run : runs) {
    if (run.error_occurred) continue;
    const std::string name = run.run_name.function_name;
    auto& timing = timings()[name];
    if (run.run_type == Run::RT_Aggregate) {
      if (run.aggregate_name != "median") continue;
      timing = {run.cpu_accumulated_time / static_cast<double>(run.iterations), true};
    } else if (!timing.from_median && run.iterations > 0) {
      timing = {run.cpu_accumulated_time / static_cast<double>(run.iterations), false};
    }
  }
}

void print_ratios(std::ostream& out) {
  out << "\nratios (same run, single thread, CPU time per iteration of the baseline / detflow's; CPU time so that "
         "other processes on the machine do not skew them):\n";
  for (const auto& pair : pairs()) {
    const auto detflow = timings().find(pair.name + ":detflow");
    const auto baseline = timings().find(pair.name + ":baseline");
    if (detflow == timings().end() || baseline == timings().end() || detflow->second.seconds <= 0) {
      out << "ratio " << pair.name << ": not measured (skipped or filtered out)\n";
      continue;
    }
    const double ratio = baseline->second.seconds / detflow->second.seconds;
    out << std::fixed << std::setprecision(2);
    if (pair.name.rfind("engine", 0) == 0) {
      const double overhead = 100.0 * (detflow->second.seconds / baseline->second.seconds - 1.0);
      out << "ratio " << pair.name << ": detflow Engine::run takes " << std::showpos << overhead << std::noshowpos
          << " % against " << pair.baseline_description << " (" << detflow->second.seconds * 1e3 << " ms vs "
          << baseline->second.seconds * 1e3 << " ms; the issue allows at most +5 %)\n";
    } else if (ratio >= 1.0) {
      out << "ratio " << pair.name << ": detflow is " << ratio << "x faster than " << pair.baseline_description << "\n";
    } else {
      out << "ratio " << pair.name << ": detflow is " << 1.0 / ratio << "x SLOWER than " << pair.baseline_description
          << "\n";
    }
  }
}

}  // namespace detflow::bench::micro
