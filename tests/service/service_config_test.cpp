// The http section and the JSON Lines rotation keys of the configuration registry.
#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/pipeline/config.h"

namespace detflow {
namespace {

TEST(ServiceConfig, HttpSectionKeysHaveDefaultsAndRanges) {
  const Config defaults;
  EXPECT_TRUE(defaults.http.listen.empty());
  EXPECT_EQ(defaults.http.max_clients, 4);
  Config config;
  merge_config_text(config, "http: {listen: '0.0.0.0:9000', max_clients: 2, jpeg_quality: 70}", "test");
  EXPECT_EQ(config.http.listen, "0.0.0.0:9000");
  EXPECT_EQ(config.http.max_clients, 2);
  EXPECT_EQ(config.http.jpeg_quality, 70);
  set_config_value(config, "http.listen", "8080", "--http");
  EXPECT_EQ(config.http.listen, "8080");
  EXPECT_THROW(set_config_value(config, "http.listen", "8080x", "--http"), Error);
  EXPECT_THROW(set_config_value(config, "http.listen", "99999", "--http"), Error);
  EXPECT_THROW(set_config_value(config, "http.max_clients", "0", "test"), Error);
  // --print-config output loads back.
  Config reloaded;
  merge_config_text(reloaded, config_to_yaml(config), "printed");
  EXPECT_EQ(reloaded.http.listen, "8080");
}

TEST(ServiceConfig, JsonRotationAsNestedGroupOrFlatKeys) {
  Config config;
  merge_config_text(config, "sinks: {json: out.jsonl, json_rotate: {max_bytes: 1048576, keep: 3}}", "nested");
  EXPECT_EQ(config.sinks.json_rotate_bytes, 1048576u);
  EXPECT_EQ(config.sinks.json_rotate_keep, 3);
  merge_config_text(config, "sinks: {json_rotate_max_bytes: 2000, json_rotate_keep: 7}", "flat");
  EXPECT_EQ(config.sinks.json_rotate_bytes, 2000u);
  EXPECT_EQ(config.sinks.json_rotate_keep, 7);
  try {
    merge_config_text(config, "sinks: {json_rotate: {bytes: 5}}", "typo");
    FAIL() << "expected an unknown-key error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("sinks.json_rotate_bytes"), std::string::npos) << error.what();
  }
  EXPECT_THROW(merge_config_text(config, "sinks: {json_rotate: {keep: 0}}", "range"), Error);
  EXPECT_THROW(merge_config_text(config, "sinks: {json_rotate: {max_bytes: -1}}", "range"), Error);
}

}  // namespace
}  // namespace detflow
