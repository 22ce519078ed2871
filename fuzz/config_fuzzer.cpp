// config_fuzzer — the run configuration (pipeline/include/detflow/pipeline/config.h) on
// arbitrary text, the two ways it arrives:
//   a YAML file: merge_config_text; when it is accepted, --print-config's YAML
//     (config_to_yaml) must load back to the same configuration (config.h promises it), and
//     the conversions to the pipeline's settings and the run checks must answer;
//   a command-line override "--KEY=VALUE": set_config_value.
// Accepted failure: detflow::Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "fuzz_support.h"

namespace {

void use(const detflow::Config& config) {
  try {
    (void)detflow::to_source_settings(config);
    (void)detflow::to_model_settings(config);
    (void)detflow::to_engine_options(config);
    (void)detflow::to_pipeline_settings(config);
    (void)detflow::to_sink_settings(config);
    (void)detflow::resolve_engine_layout(config, true, 2);
    (void)detflow::resolve_engine_layout(config, false, 2);
    detflow::validate_for_run(config);
  } catch (const detflow::Error&) {
  }
}

void check_printed_config_loads_back(const detflow::Config& config) {
  const std::string printed = detflow::config_to_yaml(config);
  detflow::Config reloaded;
  try {
    detflow::merge_config_text(reloaded, printed, "printed config");
  } catch (const detflow::Error& error) {
    detflow::fuzz::property_violated("--print-config output does not load: " + std::string(error.what()) +
                                     "\n--- printed ---\n" + printed);
  }
  const std::string printed_again = detflow::config_to_yaml(reloaded);
  if (printed_again != printed) {
    detflow::fuzz::property_violated("--print-config output loads to another configuration\n--- printed ---\n" +
                                     printed + "\n--- reloaded and printed ---\n" + printed_again);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = detflow::fuzz::as_text(data, size);
  detflow::Config config;
  try {
    detflow::merge_config_text(config, text, "config fuzz.yaml");
    check_printed_config_loads_back(config);
    use(config);
  } catch (const detflow::Error&) {
  }

  if (text.starts_with("--")) {
    const auto equals = text.find('=');
    const auto key = text.substr(2, equals == std::string_view::npos ? std::string_view::npos : equals - 2);
    const auto value = equals == std::string_view::npos ? std::string_view{} : text.substr(equals + 1);
    detflow::Config overridden;
    try {
      detflow::set_config_value(overridden, key, value, "--" + std::string(key));
      (void)detflow::config_value(overridden, key);
      check_printed_config_loads_back(overridden);
      use(overridden);
    } catch (const detflow::Error&) {
    }
  }
  return 0;
}
