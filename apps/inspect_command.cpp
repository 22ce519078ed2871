// `detflow inspect MODEL.onnx`: what the file declares, which family decodes it and why,
// and which engines on this machine can run it; with --verify, whether they compute the
// same detections as ONNX Runtime (exit 7 when one differs).
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "detflow/error.h"
#include "detflow/inference/describe.h"
#include "detflow/inference/engine.h"
#include "detflow/inference/model_info.h"
#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/engine_verify.h"
#include "detflow/post/decoder.h"

namespace detflow::app {

namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
  bool probe = true;
  bool verify = false;
  std::string image;
};

struct FamilyVerdict {
  std::string name;    // empty when no family fits
  std::string reason;  // why it was chosen, or why none fits
};

FamilyVerdict choose_family_for(const ModelInfo& model, const InputShapeDecision& input) {
  DecoderContext context;
  context.model = &model;
  context.outputs = model.outputs;
  const auto& shape = input.shape;
  if (shape.size() == 4) {
    context.input_height = static_cast<int>(input.nhwc ? shape[1] : shape[2]);
    context.input_width = static_cast<int>(input.nhwc ? shape[2] : shape[3]);
  }
  try {
    const FamilyChoice choice = choose_family(context);
    return {choice.family ? choice.family->name : std::string(), choice.reason};
  } catch (const Error& error) {
    return {{}, error.what()};
  }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t index = 0; index < shape.size(); ++index) {
    text += (index ? ", " : "") + std::to_string(shape[index]);
  }
  return text + "]";
}

// --verify: every engine on the same input against ONNX Runtime (engine_verify.h).
VerifyReport verify(const InspectOptions& options) {
  // The image is checked before any model loads: a typo costs nothing.
  const VerifyInput input = verify_input_from(options.image);
  ModelSettings settings;
  settings.path = options.model;
  const DetectorSetup detector(settings, EngineOptions{});
  return verify_engines(detector, input);
}

int inspect(const InspectOptions& options) {
  if (!options.image.empty() && !options.verify) throw Error("--image " + options.image + " needs --verify");
  const ModelInfo model = read_model_info(options.model);
  const InputShapeDecision input = decide_input_shape(model, EngineOptions{});
  const FamilyVerdict family = choose_family_for(model, input);
  std::optional<VerifyReport> verification;
  if (options.verify) verification = verify(options);
  // Verification loads and runs every engine already; probing them again would add nothing.
  const bool run_probes = options.probe && !options.verify;
  std::vector<EngineProbe> probes;
  if (run_probes) probes = probe_engines(model, EngineOptions{});
  const int exit_code = !verification || verification->all_agree() ? exit_success : exit_verify_disagreement;

  if (options.json) {
    nlohmann::json document = to_json(model);
    document["input_decision"] = {{"input", input.input_name},
                                  {"shape", input.shape},
                                  {"layout", input.nhwc ? "NHWC" : "NCHW"},
                                  {"reason", input.reason}};
    if (family.name.empty()) {
      document["family"] = {{"name", nullptr}, {"error", family.reason}};
    } else {
      document["family"] = {{"name", family.name}, {"reason", family.reason}};
    }
    if (verification) document["verify"] = to_json(*verification);
    if (run_probes) {
      auto engines = nlohmann::json::array();
      for (const auto& probe : probes) {
        engines.push_back({{"engine", probe.engine}, {"loads", probe.loads}, {"detail", probe.detail}});
      }
      document["engines"] = std::move(engines);
    }
    std::cout << document.dump(2) << '\n';
    return exit_code;
  }

  std::ostringstream out;
  out << to_text(model);
  if (out.str().empty() || out.str().back() != '\n') out << '\n';
  out << "input size: " << input.input_name << " " << shape_text(input.shape) << (input.nhwc ? " NHWC" : " NCHW")
      << " (" << input.reason << ")\n";
  if (family.name.empty()) {
    out << "family: none fits: " << family.reason << '\n';
  } else {
    out << "family: " << family.name << " (" << family.reason << ")\n";
  }
  if (run_probes) {
    out << "engines on this machine:\n";
    for (const auto& probe : probes) {
      out << "  " << probe.engine << ": " << (probe.loads ? "runs it" : "cannot run it") << " — " << probe.detail
          << '\n';
    }
  }
  if (verification) out << '\n' << to_text(*verification);
  std::cout << out.str() << std::flush;
  return exit_code;
}

}  // namespace

CommandAction add_inspect_command(CLI::App& app) {
  auto* command = app.add_subcommand("inspect", "Describe an ONNX model: inputs, outputs, family, engines");
  auto options = std::make_shared<InspectOptions>();
  command->add_option("model", options->model, "the .onnx file")->required()->type_name("MODEL.onnx");
  command->add_flag("--json", options->json, "print one JSON document instead of text");
  command->add_flag("!--no-probe", options->probe, "skip loading the model in every engine (faster)");
  command->add_flag("--verify", options->verify,
                    "run every engine on the same input and compare outputs and detections with ONNX Runtime; "
                    "exit 7 when an engine differs");
  command->add_option("--image", options->image, "with --verify: the input image (default: a synthetic test pattern)")
      ->type_name("PATH");
  return [options] { return inspect(*options); };
}

}  // namespace detflow::app
