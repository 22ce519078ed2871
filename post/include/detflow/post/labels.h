// detflow/post/labels.h — class names for class ids.
//
// Resolution order: a labels file when one is given (one name per line; the user's explicit
// choice wins), else metadata `names` (Ultralytics writes "{0: 'person', 1: 'bicycle', ...}"),
// else COCO-80 when the model has 80 classes, else "class_N".
// Labels is an immutable value; safe to share between threads.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "detflow/inference/model_info.h"

namespace detflow {

class Labels {
 public:
  Labels() = default;
  Labels(std::vector<std::string> names, std::string source);

  // The name of a class; "class_N" for an id without a name.
  std::string name(int class_id) const;
  std::size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  // Where the names came from, e.g. "metadata names", "labels file coco.txt", "COCO-80", "class_N".
  const std::string& source() const { return source_; }

  // Class id of a name (exact match), or of "class_N"; -1 when unknown.
  int find(std::string_view name) const;

 private:
  std::vector<std::string> names_;
  std::string source_;
};

// Throws detflow::Error when labels_file is given but cannot be read.
Labels resolve_labels(const ModelInfo& model, const std::filesystem::path& labels_file, int num_classes);

// Parses Ultralytics' Python-dict `names` metadata ({0: 'person', 1: "it's", ...}: single- or
// double-quoted names with backslash escapes; quotes, commas and colons inside names are
// fine; ids missing from the dict become "class_N") or a Python list of names.
// Empty on malformed text.
std::vector<std::string> parse_names_metadata(std::string_view text);

const std::vector<std::string>& coco80_names();

}  // namespace detflow
