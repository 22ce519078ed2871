// The run-time-dispatched row kernels (AVX2 on x86 CPUs that have it) against the portable
// 128-bit code, row by row: both must give identical values for every size and content.
// On a CPU without AVX2 both paths are the portable code and the comparison still runs.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "linear_resize.h"

namespace detflow::detail {
namespace {

cv::Mat random_frame(int width, int height, std::uint64_t seed) {
  cv::Mat frame(height, width, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(frame, cv::RNG::UNIFORM, 0, 256);
  return frame;
}

struct Planes {
  explicit Planes(int width) : stride((width + 15) / 16 * 16), values(3 * stride, -1) {}
  std::int16_t* plane(int channel) { return values.data() + static_cast<std::size_t>(channel) * stride; }
  std::size_t stride;
  std::vector<std::int16_t> values;
};

std::string case_name(int source_width, int width) {
  return std::to_string(source_width) + " -> " + std::to_string(width) + " columns";
}

TEST(LinearResizeKernels, HorizontalPassIsTheSameOnEveryPath) {
  cv::RNG rng(97);
  std::vector<std::pair<int, int>> widths = {{768, 416}, {810, 480}, {1920, 640}, {416, 768}, {3, 64},
                                             {17, 16},   {33, 32},   {1, 20},     {640, 640}};
  for (int i = 0; i < 200; ++i) widths.emplace_back(rng.uniform(1, 700), rng.uniform(1, 700));
  for (const auto& [source_width, width] : widths) {
    SCOPED_TRACE(case_name(source_width, width));
    LinearResizeTables tables;
    build_linear_resize_tables(source_width, 2, width, 2, tables);
    // Extreme and random rows: all 255 gives the largest sums the 16-bit steps must hold.
    const cv::Mat frame = random_frame(source_width, 3, static_cast<std::uint64_t>(source_width * 1000 + width));
    frame.row(1).setTo(cv::Scalar::all(255));
    frame.row(2).setTo(cv::Scalar::all(0));
    for (int row = 0; row < frame.rows; ++row) {
      Planes fastest(width), portable(width);
      const auto* source_row = frame.ptr<std::uint8_t>(row);
      resize_row_horizontal(source_row, tables, fastest.plane(0), fastest.plane(1), fastest.plane(2),
                            KernelPath::fastest);
      resize_row_horizontal(source_row, tables, portable.plane(0), portable.plane(1), portable.plane(2),
                            KernelPath::portable);
      ASSERT_EQ(fastest.values, portable.values) << "row " << row;
    }
  }
}

TEST(LinearResizeKernels, HorizontalPassOfWhiteIsFullScale) {
  // Each column's two weights add up to 2048 (or 2049 after rounding): 255 * 2048 >> 4.
  LinearResizeTables tables;
  build_linear_resize_tables(768, 2, 416, 2, tables);
  const cv::Mat white(1, 768, CV_8UC3, cv::Scalar::all(255));
  Planes planes(416);
  resize_row_horizontal(white.ptr<std::uint8_t>(0), tables, planes.plane(0), planes.plane(1), planes.plane(2));
  for (int channel = 0; channel < 3; ++channel) {
    for (int x = 0; x < 416; ++x) {
      const int sum = tables.column_weight[2 * static_cast<std::size_t>(x)] +
                      tables.column_weight[2 * static_cast<std::size_t>(x) + 1];
      ASSERT_EQ(planes.plane(channel)[x], (255 * sum) >> 4) << "channel " << channel << " column " << x;
    }
  }
}

TEST(LinearResizeKernels, VerticalPassToFloatIsTheSameOnEveryPath) {
  cv::RNG rng(11);
  for (int i = 0; i < 300; ++i) {
    const int count = i < 40 ? i + 1 : rng.uniform(1, 1000);
    SCOPED_TRACE(std::to_string(count) + " columns");
    const int padded = (count + 15) / 16 * 16;
    std::vector<std::int16_t> first(3 * static_cast<std::size_t>(padded));
    std::vector<std::int16_t> second(first.size());
    for (std::size_t k = 0; k < first.size(); ++k) {
      // (h >> 4) values are 0..32655; the extremes are the likeliest to overflow.
      first[k] = static_cast<std::int16_t>(k % 7 == 0 ? 32655 : rng.uniform(0, 32656));
      second[k] = static_cast<std::int16_t>(k % 5 == 0 ? 32655 : rng.uniform(0, 32656));
    }
    RowPair rows{};
    for (int channel = 0; channel < 3; ++channel) {
      rows.first[channel] = first.data() + channel * padded;
      rows.second[channel] = second.data() + channel * padded;
    }
    const int first_weight = i % 3 == 0 ? 2048 : rng.uniform(0, 2049);
    rows.first_weight = static_cast<std::int16_t>(first_weight);
    rows.second_weight = static_cast<std::int16_t>(2048 - first_weight);
    const float gain[3] = {1.0f / 255.0f, 0.017124753f, 1.0f};
    const float offset[3] = {0.0f, -2.117904f, -114.0f};
    // One element past the row in each plane must stay untouched.
    std::vector<float> fastest(3 * static_cast<std::size_t>(count + 1), -7.0f), portable(fastest);
    const auto plane = [count](std::vector<float>& values, int channel) {
      return values.data() + channel * (count + 1);
    };
    blend_row_planar_f32(rows, count, gain, offset, plane(fastest, 0), plane(fastest, 1), plane(fastest, 2),
                         KernelPath::fastest);
    blend_row_planar_f32(rows, count, gain, offset, plane(portable, 0), plane(portable, 1), plane(portable, 2),
                         KernelPath::portable);
    ASSERT_EQ(fastest, portable);
    for (int channel = 0; channel < 3; ++channel) ASSERT_EQ(plane(fastest, channel)[count], -7.0f);
  }
}

}  // namespace
}  // namespace detflow::detail
