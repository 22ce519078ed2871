// OutputSanity: each condition (non-finite outputs, scores outside [0, 1] with and without
// quantisation, every box degenerate) warns exactly once, in one line, and a healthy model's
// frames warn nothing; watching stops after the configured frames.
#include "detflow/post/output_sanity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "log_capture.h"

namespace detflow {
namespace {

Tensor output_tensor(const std::vector<float>& values, ElementType type = ElementType::float32,
                     const std::string& name = "output0") {
  Tensor tensor(type, {1, static_cast<std::int64_t>(values.size())});
  tensor.name = name;
  for (std::size_t index = 0; index < values.size(); ++index) {
    if (type == ElementType::float16) {
      tensor.data<std::uint16_t>()[index] = float_to_half(values[index]);
    } else {
      tensor.data<float>()[index] = values[index];
    }
  }
  return tensor;
}

// A 640x480 frame stretched to a 320x240 input: 2 source pixels per input pixel.
Geometry half_scale() {
  PreprocessSpec spec;
  spec.width = 320;
  spec.height = 240;
  spec.resize = ResizeMode::stretch;
  return compute_geometry(spec, 640, 480);
}

Detection box(float x1, float y1, float x2, float y2, float score) {
  Detection detection;
  detection.x1 = x1;
  detection.y1 = y1;
  detection.x2 = x2;
  detection.y2 = y2;
  detection.score = score;
  return detection;
}

// Outputs with values spread over [0, 1) in 1/1000 steps... that are no quantisation grid
// (1000 distinct values > 256), and healthy boxes.
std::vector<float> healthy_values() {
  std::vector<float> values(4000);
  for (std::size_t index = 0; index < values.size(); ++index) values[index] = static_cast<float>(index % 997) / 997.0f;
  return values;
}

void observe_frames(OutputSanity& sanity, const std::vector<Tensor>& outputs, const std::vector<Detection>& detections,
                    int frames) {
  for (int frame = 0; frame < frames; ++frame) sanity.observe(outputs, detections, half_scale());
}

TEST(OutputSanity, HealthyFramesWarnNothingAndWatchingStops) {
  const test::LogCapture log;
  OutputSanity sanity(ModelInfo{}, "yolov5");
  EXPECT_TRUE(sanity.watching());
  const std::vector<Tensor> outputs{output_tensor(healthy_values())};
  observe_frames(sanity, outputs, {box(10, 10, 200, 300, 0.9f), box(0, 0, 4, 4, 0.3f)}, 5);
  EXPECT_FALSE(sanity.watching());
  EXPECT_TRUE(sanity.warnings().empty());
  EXPECT_EQ(log.text(), "");
}

TEST(OutputSanity, NonFiniteOutputsWarnOnceNamingTheOutputAndCounts) {
  const test::LogCapture log;
  OutputSanity sanity(ModelInfo{}, "yolov8");
  std::vector<float> values = healthy_values();
  values[3] = std::numeric_limits<float>::quiet_NaN();
  values[4] = std::numeric_limits<float>::quiet_NaN();
  values[9] = -std::numeric_limits<float>::infinity();
  // float16 carries NaN and Inf too.
  const std::vector<Tensor> outputs{output_tensor(healthy_values(), ElementType::float32, "boxes"),
                                    output_tensor(values, ElementType::float16, "scores")};
  observe_frames(sanity, outputs, {box(10, 10, 200, 300, 0.9f)}, 5);
  ASSERT_EQ(sanity.warnings().size(), 1u) << log.text();
  EXPECT_EQ(log.count("warning: yolov8: output 'scores' holds 2 NaN and 1 infinite values of 4000 on frame 1: the "
                      "engine computes this model wrongly"),
            1)
      << log.text();
  EXPECT_EQ(sanity.warnings()[0].find('\n'), std::string::npos);
}

TEST(OutputSanity, ScoresOutsideTheUnitRangeWarnOnceAsLogits) {
  const test::LogCapture log;
  OutputSanity sanity(ModelInfo{}, "yolox");
  const std::vector<Tensor> outputs{output_tensor(healthy_values())};
  observe_frames(sanity, outputs, {box(10, 10, 200, 300, 0.9f), box(20, 20, 100, 100, 4.5f)}, 3);
  ASSERT_EQ(sanity.warnings().size(), 1u) << log.text();
  EXPECT_EQ(log.count("warning: yolox: detection score 4.5 on frame 1 is outside [0, 1]: the score outputs are "
                      "probably logits, not probabilities"),
            1)
      << log.text();
  EXPECT_EQ(log.text().find("quantis"), std::string::npos) << log.text();
}

// int8-style outputs: (q - 0) x 1/255 for q in -1..255, so the values sit on steps of
// 1/255 and a score may overshoot 1 by one step.
std::vector<float> dequantised_values() {
  std::vector<float> values(4096);
  for (std::size_t index = 0; index < values.size(); ++index) {
    values[index] = static_cast<float>(static_cast<int>(index % 257) - 1) / 255.0f;
  }
  return values;
}

TEST(OutputSanity, QuantisedOutputsNameTheirStep) {
  const test::LogCapture log;
  ModelInfo model;
  model.operator_histogram["DequantizeLinear"] = 2;
  OutputSanity sanity(model, "yolov5");
  const std::vector<Tensor> outputs{output_tensor(dequantised_values())};
  const float one_step_over = 256.0f / 255.0f;
  observe_frames(sanity, outputs, {box(10, 10, 200, 300, one_step_over)}, 2);
  ASSERT_EQ(sanity.warnings().size(), 1u) << log.text();
  const std::string line = sanity.warnings()[0];  // a copy: warnings() returns by value
  EXPECT_NE(line.find("within one quantisation step of the range (output 'output0' is quantised with a step (scale) "
                      "of 0.00392"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("257 distinct values"), std::string::npos) << line;

  // Far outside the range: logits, and the step is still named.
  OutputSanity logits(model, "yolov5");
  observe_frames(logits, outputs, {box(10, 10, 200, 300, 7.0f)}, 1);
  ASSERT_EQ(logits.warnings().size(), 1u);
  EXPECT_NE(logits.warnings()[0].find("probably logits"), std::string::npos) << logits.warnings()[0];
  EXPECT_NE(logits.warnings()[0].find("step (scale) of 0.00392"), std::string::npos) << logits.warnings()[0];
}

TEST(OutputSanity, EveryBoxDegenerateWarnsOnceWithAnExample) {
  const test::LogCapture log;
  OutputSanity sanity(ModelInfo{}, "yolov5");
  const std::vector<Tensor> outputs{output_tensor(healthy_values())};
  // Source boxes of at most 4 px = 2 input pixels, one with a negative width.
  const std::vector<Detection> corner{box(0, 0, 1.5f, 1, 0.9f), box(3, 2, 1, 4, 0.8f)};
  observe_frames(sanity, outputs, corner, 5);
  ASSERT_EQ(sanity.warnings().size(), 1u) << log.text();
  EXPECT_EQ(log.count("warning: yolov5: all 4 detections of the first 2 frames are at most 2 input pixels wide or "
                      "high (e.g. [0, 0, 1.5, 1] in source pixels): the boxes are not in input pixels, likely an "
                      "undecoded head"),
            1)
      << log.text();
}

TEST(OutputSanity, DegenerateBoxesAreJudgedAtTheEndOfTheWatchWhenFew) {
  OutputSanity::Settings settings;
  settings.frames_to_watch = 3;
  OutputSanity sanity(ModelInfo{}, "yolov5", settings);
  const std::vector<Tensor> outputs{output_tensor(healthy_values())};
  sanity.observe(outputs, {}, half_scale());
  sanity.observe(outputs, std::vector<Detection>{box(0, 0, 2, 2, 0.9f)}, half_scale());
  EXPECT_TRUE(sanity.warnings().empty()) << "one small box is not yet a pattern";
  sanity.observe(outputs, {}, half_scale());
  ASSERT_EQ(sanity.warnings().size(), 1u);
  EXPECT_NE(sanity.warnings()[0].find("all 1 detections of the first 3 frames"), std::string::npos)
      << sanity.warnings()[0];
  // The watch is over: nothing more is looked at.
  std::vector<float> broken = healthy_values();
  broken[0] = std::numeric_limits<float>::quiet_NaN();
  sanity.observe(std::vector<Tensor>{output_tensor(broken)}, {}, half_scale());
  EXPECT_EQ(sanity.warnings().size(), 1u);
}

TEST(OutputSanity, OneHealthyBoxClearsTheDegenerateSuspicion) {
  OutputSanity sanity(ModelInfo{}, "yolov5");
  const std::vector<Tensor> outputs{output_tensor(healthy_values())};
  sanity.observe(outputs, std::vector<Detection>{box(0, 0, 2, 2, 0.9f), box(0, 0, 1, 1, 0.9f)}, half_scale());
  sanity.observe(outputs, std::vector<Detection>{box(100, 100, 180, 200, 0.9f)}, half_scale());
  observe_frames(sanity, outputs, {box(0, 0, 2, 2, 0.9f), box(0, 0, 1, 1, 0.9f)}, 3);
  EXPECT_TRUE(sanity.warnings().empty());
}

}  // namespace
}  // namespace detflow
