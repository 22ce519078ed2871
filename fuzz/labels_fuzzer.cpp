// labels_fuzzer — the two class-name parsers (post/include/detflow/post/labels.h) on
// arbitrary text: a labels file (one name per line, read by resolve_labels) and Ultralytics'
// `names` metadata (a Python dict or list, parse_names_metadata). Checks that every name
// resolves back to an id no larger than its own (find() returns the first equal name).
// Accepted failure: detflow::Error from a labels file without names.
#include <cstddef>
#include <cstdint>
#include <string>

#include "detflow/error.h"
#include "detflow/inference/model_info.h"
#include "detflow/post/labels.h"
#include "fuzz_support.h"

namespace {

void check_lookups(const detflow::Labels& labels) {
  const std::size_t checked = std::min<std::size_t>(labels.size(), 64);
  for (std::size_t id = 0; id < checked; ++id) {
    const int found = labels.find(labels.name(static_cast<int>(id)));
    if (found < 0 || found > static_cast<int>(id)) {
      detflow::fuzz::property_violated("name of class " + std::to_string(id) + " resolves to " + std::to_string(found));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static detflow::fuzz::ScratchFile labels_file(".labels");
  const auto text = detflow::fuzz::as_text(data, size);
  const detflow::ModelInfo no_model;
  try {
    check_lookups(detflow::resolve_labels(no_model, labels_file.write(text), 0));
  } catch (const detflow::Error&) {
  }

  detflow::ModelInfo model;
  model.metadata["names"] = std::string(text);
  const auto names = detflow::parse_names_metadata(text);
  const auto labels = detflow::resolve_labels(model, {}, 80);
  if (!names.empty() && labels.names() != names) detflow::fuzz::property_violated("metadata names not used");
  check_lookups(labels);
  return 0;
}
