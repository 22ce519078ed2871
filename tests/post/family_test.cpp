// Family auto-detection on hand-built output layouts for every family, forcing a family,
// the unknown-layout error, the registry's names and reference defaults.
#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/post/decoder.h"

namespace detflow {
namespace {

TensorInfo output_info(std::vector<std::int64_t> shape, ElementType type = ElementType::float32) {
  TensorInfo info;
  info.name = "output";
  info.type = type;
  info.type_name = std::string(element_type_name(type));
  for (const std::int64_t dim : shape) info.shape.push_back(Dim{dim, ""});
  info.has_shape = true;
  return info;
}

DecoderContext context_for(std::vector<TensorInfo> outputs, int size, const ModelInfo* model = nullptr) {
  DecoderContext context;
  context.model = model;
  context.outputs = std::move(outputs);
  context.input_width = size;
  context.input_height = size;
  return context;
}

std::string chosen(const DecoderContext& context) {
  const FamilyChoice choice = choose_family(context);
  EXPECT_FALSE(choice.reason.empty());
  // The chosen family builds a decoder that reports the same name.
  const auto decoder = choice.family->create(context);
  EXPECT_EQ(decoder->family(), choice.family->name);
  return choice.family->name;
}

ModelInfo ultralytics_model(bool end_to_end) {
  ModelInfo model;
  model.metadata["author"] = "Ultralytics";
  model.metadata["task"] = "detect";
  model.metadata["stride"] = "32";
  model.metadata["names"] = "{0: 'person', 1: 'bicycle'}";
  if (end_to_end) model.metadata["end2end"] = "True";
  return model;
}

TEST(ChooseFamily, Yolov8ChannelMajor) {
  const auto context = context_for({output_info({1, 84, 8400})}, 640);
  EXPECT_EQ(chosen(context), "yolov8");
  EXPECT_NE(choose_family(context).reason.find("[1, 84, 8400]"), std::string::npos);
}

TEST(ChooseFamily, Yolov8TransposedNeedsUltralyticsMetadata) {
  const ModelInfo model = ultralytics_model(false);
  EXPECT_EQ(chosen(context_for({output_info({1, 8400, 84})}, 640, &model)), "yolov8");
  // The same shape without metadata is YOLOX's row layout (5 + 79 classes).
  EXPECT_EQ(chosen(context_for({output_info({1, 8400, 84})}, 640)), "yolox");
}

TEST(ChooseFamily, Yolov5AndYoloxShareTheRowLayoutButNotTheRowCount) {
  EXPECT_EQ(chosen(context_for({output_info({1, 25200, 85}, ElementType::float16)}, 640)), "yolov5");
  EXPECT_EQ(chosen(context_for({output_info({1, 3549, 85})}, 416)), "yolox");
  EXPECT_EQ(chosen(context_for({output_info({1, 8400, 85})}, 640)), "yolox");
  EXPECT_EQ(chosen(context_for({output_info({1, 10647, 85})}, 416)), "yolov5");    // 3 x 3549
  EXPECT_EQ(chosen(context_for({output_info({1, 102000, 85})}, 1280)), "yolov5");  // P6: 3 x 34000
}

TEST(ChooseFamily, Yolov5RawHeads) {
  EXPECT_EQ(
      chosen(context_for(
          {output_info({1, 3, 80, 80, 85}), output_info({1, 3, 40, 40, 85}), output_info({1, 3, 20, 20, 85})}, 640)),
      "yolov5");
  EXPECT_EQ(chosen(context_for(
                {output_info({1, 255, 80, 80}), output_info({1, 255, 40, 40}), output_info({1, 255, 20, 20})}, 640)),
            "yolov5");
}

TEST(ChooseFamily, EndToEnd) {
  const ModelInfo model = ultralytics_model(true);
  EXPECT_EQ(chosen(context_for({output_info({1, 300, 6})}, 640, &model)), "yolov10");
  EXPECT_EQ(chosen(context_for({output_info({1, 300, 6})}, 640)), "yolov10");
  // One-class YOLOv5 output has 6 columns too, but a grid row count.
  EXPECT_EQ(chosen(context_for({output_info({1, 25200, 6})}, 640)), "yolov5");
}

TEST(ChooseFamily, NanodetSeparateHeadsAsExported) {
  // The real nanodet_m_320 outputs: class tensors first, names unrelated to contents.
  EXPECT_EQ(chosen(context_for({output_info({1600, 80}), output_info({400, 80}), output_info({100, 80}),
                                output_info({1600, 32}), output_info({400, 32}), output_info({100, 32})},
                               320)),
            "nanodet");
  EXPECT_EQ(chosen(context_for({output_info({1, 2125, 112})}, 320)), "nanodet");  // NanoDet-Plus
}

TEST(ChooseFamily, SsdBlazeFace) {
  EXPECT_EQ(chosen(context_for({output_info({1, 896, 16}), output_info({1, 896, 1})}, 128)), "ssd");
}

TEST(ChooseFamily, UnknownLayoutListsFamiliesAndHowToForce) {
  try {
    choose_family(context_for({output_info({1, 10, 10, 10}), output_info({1, 7})}, 640));
    FAIL() << "expected detflow::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const FamilyDescription& family : registered_families()) {
      EXPECT_NE(message.find(family.name), std::string::npos) << message;
    }
    EXPECT_NE(message.find("--family"), std::string::npos) << message;
    EXPECT_NE(message.find("[1, 10, 10, 10]"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line";
  }
}

TEST(ChooseFamily, ForcedFamilyWinsAndUnknownNamesAreRejected) {
  const auto context = context_for({output_info({1, 8400, 84})}, 640);
  const FamilyChoice forced = choose_family(context, "yolov8");
  EXPECT_EQ(forced.family->name, "yolov8");
  EXPECT_NE(forced.reason.find("forced"), std::string::npos);
  EXPECT_THROW(choose_family(context, "yolov99"), Error);
}

TEST(RegisteredFamilies, ReferenceDefaults) {
  const auto find = [](std::string_view name) -> const FamilyDescription& {
    for (const FamilyDescription& family : registered_families()) {
      if (family.name == name) return family;
    }
    throw std::runtime_error("missing family " + std::string(name));
  };
  const auto& yolov8 = find("yolov8").defaults;
  EXPECT_EQ(yolov8.preprocess.resize, ResizeMode::letterbox_center);
  EXPECT_EQ(yolov8.preprocess.color, ColorOrder::rgb);
  EXPECT_DOUBLE_EQ(yolov8.preprocess.scale, 1.0 / 255.0);
  EXPECT_FLOAT_EQ(yolov8.postprocess.iou_threshold, 0.7f);
  EXPECT_FALSE(find("yolov10").defaults.postprocess.nms);
  const auto& yolox = find("yolox").defaults;
  EXPECT_EQ(yolox.preprocess.resize, ResizeMode::letterbox_top_left);
  EXPECT_EQ(yolox.preprocess.color, ColorOrder::bgr);
  EXPECT_DOUBLE_EQ(yolox.preprocess.scale, 1.0);
  const auto& nanodet = find("nanodet").defaults;
  EXPECT_EQ(nanodet.preprocess.resize, ResizeMode::stretch);
  EXPECT_DOUBLE_EQ(nanodet.preprocess.std[2], 58.395);
  const auto& ssd = find("ssd").defaults;
  EXPECT_EQ(ssd.preprocess.layout, Layout::nhwc);
  EXPECT_DOUBLE_EQ(255 * ssd.preprocess.scale - ssd.preprocess.mean[0], 1.0);
  EXPECT_EQ(registered_families().size(), 6u);
}

}  // namespace
}  // namespace detflow
