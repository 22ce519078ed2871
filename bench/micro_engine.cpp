// Engine overhead: detflow's ONNX Runtime Engine::run against a raw Ort::Session::Run on
// the same model (YOLOX-nano), same session options (all graph optimisations, sequential,
// one intra-op and one inter-op thread) and the same preprocessed input. The raw side does
// what the ONNX Runtime tutorial does: wrap the input buffer in an Ort::Value per run and
// let the session allocate the outputs. The issue allows detflow at most 5 % more.
#include <memory>

#include "detflow/inference/engine.h"
#include "detflow/inference/model_info.h"
#include "micro_support.h"

#ifdef DETFLOW_BENCH_HAVE_ONNXRUNTIME
#include <onnxruntime_cxx_api.h>
#endif

namespace detflow::bench::micro {
namespace {

#ifdef DETFLOW_BENCH_HAVE_ONNXRUNTIME
struct EngineCase {
  ModelInfo model;
  Tensor input;
};

const EngineCase* find_engine_case(std::string& why) {
  static std::unique_ptr<EngineCase> built;
  static std::string failure;
  if (built) return built.get();
  if (!failure.empty()) {
    why = failure;
    return nullptr;
  }
  const auto model = shared_file("models/yolox_nano.onnx");
  if (!model) {
    why = failure = "needs ../shared/models/yolox_nano.onnx";
    return nullptr;
  }
  try {
    ModelSettings settings;
    settings.path = *model;
    EngineOptions engine;
    engine.backend = "onnxruntime";
    engine.intra_op_threads = 1;
    DetectorSetup setup(settings, engine);
    auto engine_case = std::make_unique<EngineCase>();
    engine_case->model = setup.model();
    engine_case->input = setup.make_input_tensor();
    Preprocessor preprocessor(setup.preprocess_spec());
    preprocessor.run(test_frame(), engine_case->input);
    built = std::move(engine_case);
    return built.get();
  } catch (const std::exception& error) {
    why = failure = error.what();
    return nullptr;
  }
}

void detflow_engine(benchmark::State& state) {
  std::string why;
  const EngineCase* engine_case = find_engine_case(why);
  if (engine_case == nullptr) {
    state.SkipWithError(why.c_str());
    return;
  }
  EngineOptions options;
  options.backend = "onnxruntime";
  options.intra_op_threads = 1;
  std::unique_ptr<Engine> engine = create_engine(engine_case->model, options);
  std::vector<Tensor> outputs;
  engine->run(std::span<const Tensor>(&engine_case->input, 1), outputs);  // warm-up
  for (auto _ : state) {
    engine->run(std::span<const Tensor>(&engine_case->input, 1), outputs);
    benchmark::DoNotOptimize(outputs.data());
  }
}

void raw_session(benchmark::State& state) {
  std::string why;
  const EngineCase* engine_case = find_engine_case(why);
  if (engine_case == nullptr) {
    state.SkipWithError(why.c_str());
    return;
  }
  static Ort::Env environment(ORT_LOGGING_LEVEL_WARNING, "microbench-raw-session");
  Ort::SessionOptions options;
  options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  options.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
  options.SetInterOpNumThreads(1);
  options.SetIntraOpNumThreads(1);
  Ort::Session session(environment, engine_case->model.path.c_str(), options);
  Ort::AllocatorWithDefaultOptions allocator;
  const std::string input_name = session.GetInputNameAllocated(0, allocator).get();
  std::vector<std::string> output_names;
  for (std::size_t index = 0; index < session.GetOutputCount(); ++index) {
    output_names.push_back(session.GetOutputNameAllocated(index, allocator).get());
  }
  std::vector<const char*> output_pointers;
  for (const auto& name : output_names) output_pointers.push_back(name.c_str());
  const char* input_names[] = {input_name.c_str()};
  const Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  const Tensor& input = engine_case->input;
  const auto run_once = [&] {
    Ort::Value value =
        Ort::Value::CreateTensor<float>(memory, const_cast<float*>(input.data<float>()), input.element_count(),
                                        input.shape().data(), input.shape().size());
    return session.Run(Ort::RunOptions{nullptr}, input_names, &value, 1, output_pointers.data(),
                       output_pointers.size());
  };
  run_once();  // warm-up
  for (auto _ : state) {
    auto outputs = run_once();
    benchmark::DoNotOptimize(outputs.data());
  }
}
#endif

}  // namespace

void register_engine_benchmarks() {
#ifdef DETFLOW_BENCH_HAVE_ONNXRUNTIME
  register_pair("engine_yolox_nano", "a raw Ort::Session::Run (same options, 1 thread)", detflow_engine, raw_session,
                5);
#endif
}

}  // namespace detflow::bench::micro
