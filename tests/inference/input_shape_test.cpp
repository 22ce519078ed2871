// decide_input_shape: which rule fixes each dim, and the refusal of non-image inputs.
#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/inference/engine.h"

namespace detflow {
namespace {

ModelInfo model_with_input(std::vector<Dim> shape, std::map<std::string, std::string> metadata = {}) {
  ModelInfo model;
  model.path = "/models/test.onnx";
  TensorInfo input;
  input.name = "images";
  input.type = ElementType::float32;
  input.has_shape = true;
  input.shape = std::move(shape);
  model.inputs.push_back(input);
  model.metadata = std::move(metadata);
  return model;
}

Dim fixed(std::int64_t value) { return Dim{value, {}}; }
Dim symbol(const std::string& name) { return Dim{-1, name}; }

using Shape = std::vector<std::int64_t>;

TEST(InputShape, FixedInTheModel) {
  const auto decision = decide_input_shape(model_with_input({fixed(1), fixed(3), fixed(416), fixed(416)}), {});
  EXPECT_EQ(decision.input_name, "images");
  EXPECT_EQ(decision.shape, (Shape{1, 3, 416, 416}));
  EXPECT_FALSE(decision.nhwc);
  EXPECT_EQ(decision.reason, "fixed in the model");
}

TEST(InputShape, FixedModelIgnoresRequestedSizeAndSaysSo) {
  EngineOptions options;
  options.input_width = 320;
  options.input_height = 320;
  const auto decision = decide_input_shape(model_with_input({fixed(1), fixed(3), fixed(416), fixed(416)}), options);
  EXPECT_EQ(decision.shape, (Shape{1, 3, 416, 416}));
  EXPECT_NE(decision.reason.find("requested 320x320 ignored"), std::string::npos) << decision.reason;
}

TEST(InputShape, DynamicFromOptionsBeforeMetadata) {
  EngineOptions options;
  options.input_width = 480;
  options.input_height = 320;
  const auto decision = decide_input_shape(
      model_with_input({symbol("batch"), fixed(3), symbol("height"), symbol("width")}, {{"imgsz", "[640, 640]"}}),
      options);
  EXPECT_EQ(decision.shape, (Shape{1, 3, 320, 480}));
  EXPECT_EQ(decision.reason, "from options, batch 1");
}

TEST(InputShape, OnlyWidthGivenMeansSquare) {
  EngineOptions options;
  options.input_width = 256;
  const auto decision = decide_input_shape(model_with_input({fixed(1), fixed(3), symbol("h"), symbol("w")}), options);
  EXPECT_EQ(decision.shape, (Shape{1, 3, 256, 256}));
}

TEST(InputShape, DynamicFromUltralyticsImgszHeightThenWidth) {
  const auto decision = decide_input_shape(
      model_with_input({fixed(1), fixed(3), symbol("height"), symbol("width")}, {{"imgsz", "[384, 640]"}}), {});
  EXPECT_EQ(decision.shape, (Shape{1, 3, 384, 640}));
  EXPECT_EQ(decision.reason, "from metadata imgsz");
}

TEST(InputShape, SingleNumberImgsz) {
  const auto decision =
      decide_input_shape(model_with_input({fixed(1), fixed(3), symbol("h"), symbol("w")}, {{"imgsz", "512"}}), {});
  EXPECT_EQ(decision.shape, (Shape{1, 3, 512, 512}));
}

TEST(InputShape, UnparsableImgszFallsToDefault) {
  const auto decision =
      decide_input_shape(model_with_input({fixed(1), fixed(3), symbol("h"), symbol("w")}, {{"imgsz", "auto"}}), {});
  EXPECT_EQ(decision.shape, (Shape{1, 3, 640, 640}));
  EXPECT_EQ(decision.reason, "default 640");
}

TEST(InputShape, DefaultSixHundredForty) {
  const auto decision = decide_input_shape(model_with_input({symbol("N"), symbol("C"), Dim{}, Dim{}}), {});
  EXPECT_EQ(decision.shape, (Shape{1, 3, 640, 640}));
  EXPECT_FALSE(decision.nhwc);
  EXPECT_EQ(decision.reason, "default 640, batch 1, 3 channels assumed");
}

TEST(InputShape, OneDimFixedTheOtherDecided) {
  EngineOptions options;
  options.input_width = 800;
  const auto decision = decide_input_shape(model_with_input({fixed(1), fixed(3), fixed(480), symbol("w")}), options);
  EXPECT_EQ(decision.shape, (Shape{1, 3, 480, 800}));
  EXPECT_EQ(decision.reason, "height fixed in the model, width from options");
}

TEST(InputShape, ChannelsLastLikeBlazeFace) {
  const auto decision = decide_input_shape(model_with_input({fixed(1), fixed(128), fixed(128), fixed(3)}), {});
  EXPECT_TRUE(decision.nhwc);
  EXPECT_EQ(decision.shape, (Shape{1, 128, 128, 3}));
}

TEST(InputShape, ChannelsLastWithDynamicSize) {
  const auto decision = decide_input_shape(
      model_with_input({symbol("batch"), symbol("height"), symbol("width"), fixed(1)}, {{"imgsz", "[96, 128]"}}), {});
  EXPECT_TRUE(decision.nhwc);
  EXPECT_EQ(decision.shape, (Shape{1, 96, 128, 1}));
}

TEST(InputShape, GreyscaleChannelsFirst) {
  const auto decision = decide_input_shape(model_with_input({fixed(1), fixed(1), fixed(64), fixed(64)}), {});
  EXPECT_FALSE(decision.nhwc);
}

TEST(InputShape, FixedBatchIsKept) {
  const auto decision = decide_input_shape(model_with_input({fixed(4), fixed(3), fixed(64), fixed(64)}), {});
  EXPECT_EQ(decision.shape[0], 4);
}

TEST(InputShape, NonImageInputIsRefused) {
  try {
    decide_input_shape(model_with_input({fixed(1), fixed(3), fixed(224)}), {});
    FAIL() << "rank-3 input accepted";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(),
                 "model '/models/test.onnx': input 'images' has shape [1, 3, 224]: detflow needs an image tensor "
                 "[N, C, H, W] or [N, H, W, C]");
  }
  EXPECT_THROW(decide_input_shape(model_with_input({fixed(1), fixed(3), fixed(224), fixed(224), fixed(1)}), {}), Error);
  auto no_shape = model_with_input({});
  no_shape.inputs[0].has_shape = false;
  EXPECT_THROW(decide_input_shape(no_shape, {}), Error);
}

TEST(InputShape, NegativeRequestedSizeIsRefused) {
  EngineOptions options;
  options.input_width = -1;
  EXPECT_THROW(decide_input_shape(model_with_input({fixed(1), fixed(3), symbol("h"), symbol("w")}), options), Error);
}

}  // namespace
}  // namespace detflow
