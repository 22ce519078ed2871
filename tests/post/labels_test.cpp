// Labels: Ultralytics `names` metadata (quotes, commas, escapes, gaps), labels files,
// COCO-80 and class_N fallbacks, lookups.
#include <fstream>

#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/post/labels.h"
#include "shared_data.h"

namespace detflow {
namespace {

TEST(ParseNamesMetadata, UltralyticsDict) {
  EXPECT_EQ(parse_names_metadata("{0: 'person', 1: 'bicycle', 2: 'traffic light'}"),
            (std::vector<std::string>{"person", "bicycle", "traffic light"}));
}

TEST(ParseNamesMetadata, NamesWithQuotesCommasColonsAndEscapes) {
  EXPECT_EQ(parse_names_metadata(R"({0: "it's", 1: 'a, b', 2: 'x: y', 3: 'say \'hi\'', 4: "back\\slash"})"),
            (std::vector<std::string>{"it's", "a, b", "x: y", "say 'hi'", "back\\slash"}));
}

TEST(ParseNamesMetadata, UnorderedIdsAndGaps) {
  EXPECT_EQ(parse_names_metadata("{2: 'c', 0: 'a',}"), (std::vector<std::string>{"a", "class_1", "c"}));
}

TEST(ParseNamesMetadata, ListForm) {
  EXPECT_EQ(parse_names_metadata("['cat', \"dog\"]"), (std::vector<std::string>{"cat", "dog"}));
}

TEST(ParseNamesMetadata, MalformedTextGivesNothing) {
  for (const char* text : {"", "{", "{0: 'a'", "{0: a}", "{0 'a'}", "{'a': 0}", "{0: 'a'} trailing", "{-1: 'a'}",
                           "{0: 'unterminated}", "person, bicycle", "{}"}) {
    EXPECT_TRUE(parse_names_metadata(text).empty()) << text;
  }
}

TEST(Labels, NameAndFind) {
  const Labels labels({"person", "bicycle"}, "test");
  EXPECT_EQ(labels.name(1), "bicycle");
  EXPECT_EQ(labels.name(5), "class_5");
  EXPECT_EQ(labels.name(-1), "class_-1");
  EXPECT_EQ(labels.find("bicycle"), 1);
  EXPECT_EQ(labels.find("class_7"), 7);
  EXPECT_EQ(labels.find("class_x"), -1);
  EXPECT_EQ(labels.find("horse"), -1);
}

TEST(ResolveLabels, LabelsFileWinsThenMetadataThenCocoThenNumbers) {
  ModelInfo model;
  model.metadata["names"] = "{0: 'meta_a', 1: 'meta_b'}";
  const auto directory = test::temporary_directory("detflow_labels");
  const auto file = directory / "names.txt";
  std::ofstream(file) << "alpha\r\nbeta\n\n";
  const Labels from_file = resolve_labels(model, file, 2);
  EXPECT_EQ(from_file.names(), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(from_file.source(), "labels file names.txt");

  const Labels from_metadata = resolve_labels(model, {}, 2);
  EXPECT_EQ(from_metadata.names(), (std::vector<std::string>{"meta_a", "meta_b"}));
  EXPECT_EQ(from_metadata.source(), "metadata names");

  const ModelInfo bare;
  const Labels coco = resolve_labels(bare, {}, 80);
  EXPECT_EQ(coco.source(), "COCO-80");
  EXPECT_EQ(coco.name(0), "person");
  EXPECT_EQ(coco.name(79), "toothbrush");

  const Labels numbered = resolve_labels(bare, {}, 3);
  EXPECT_EQ(numbered.names(), (std::vector<std::string>{"class_0", "class_1", "class_2"}));
}

TEST(ResolveLabels, UnreadableFileIsASetupError) {
  EXPECT_THROW(resolve_labels(ModelInfo{}, "/nonexistent/detflow/labels.txt", 80), Error);
}

TEST(Coco80, HasEightyNames) { EXPECT_EQ(coco80_names().size(), 80u); }

// Found by fuzz/labels_fuzzer.cpp (fuzz/corpus/labels/large_id.txt): one id of 2^20 made a
// million names, 1.4 s under the sanitizers. Ids stop at 65535.
TEST(ParseNamesMetadata, ClassIdsAreBoundedSoOneHugeIdCannotMakeAMillionNames) {
  const auto names = parse_names_metadata("{65535: 'last', 0: 'first'}");
  ASSERT_EQ(names.size(), 65536u);
  EXPECT_EQ(names.front(), "first");
  EXPECT_EQ(names[1], "class_1");
  EXPECT_EQ(names.back(), "last");
  EXPECT_TRUE(parse_names_metadata("{65536: 'x'}").empty());
  EXPECT_TRUE(parse_names_metadata("{1048576: 'far'}").empty());
}

}  // namespace
}  // namespace detflow
