// Internal to detflow_pre: cv::resize(INTER_LINEAR) of 8-bit BGR images, reproduced bit
// for bit and split into the row steps Preprocessor fuses with the tensor conversion.
//
// OpenCV 4.x (imgproc/src/resize.cpp, fixed-point path for CV_8U) computes, for output
// column dx of a resize from sw to dw columns (scale = 1 / (dw / sw), all in double, then
// float):
//   fx = float((dx + 0.5) * scale - 0.5), sx = floor(fx), fx -= sx;
//   sx < 0 -> sx = 0, fx = 0;  sx >= sw - 1 -> sx = sw - 1, fx = 0;
//   a0 = saturate_cast<short>((1 - fx) * 2048), a1 = saturate_cast<short>(fx * 2048).
// The horizontal pass gives h = p[sx] * a0 + p[sx + 1] * a1 per channel (exact integers).
// Rows use the same weights (b0, b1) from the unclamped fy, and the two source rows
// floor(fy) and floor(fy) + 1 clamped to the frame. The vertical pass rounds as
// VResizeLinear<uchar> and its SIMD twin VResizeLinearVec_32s8u do:
//   level = (((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2.
// An exact 2x downscale, which OpenCV hands to its INTER_AREA code, gives the same levels.
// The horizontal rows are kept as h >> 4 (at most 32655), so the vertical pass is 16-bit.
#pragma once

#include <cstdint>

#include "detflow/pre/preprocess.h"

namespace detflow::detail {

// Fills `tables` for a resize of a source_width x source_height frame to width x height.
void build_linear_resize_tables(int source_width, int source_height, int width, int height, LinearResizeTables& tables);

// Which code the row steps run: the fastest this CPU supports (AVX2 on x86 when present),
// or the portable 128-bit code only. Both give the same values; `portable` is there so
// tests can compare the two on one machine.
enum class KernelPath : std::uint8_t { fastest, portable };

// Horizontal pass of one 8-bit BGR source row: (h >> 4) of each output column into three
// int16 planes, in the source's channel order (blue, green, red).
void resize_row_horizontal(const std::uint8_t* source_row, const LinearResizeTables& tables, std::int16_t* blue,
                           std::int16_t* green, std::int16_t* red, KernelPath path = KernelPath::fastest);

// Two horizontally resized rows and their vertical weights, planes in tensor channel order.
// Planes are readable up to `count` rounded up to a multiple of 8.
struct RowPair {
  const std::int16_t* first[3];
  const std::int16_t* second[3];
  std::int16_t first_weight;
  std::int16_t second_weight;
};

// Vertical pass of `count` columns, converted to value = level * gain[c] + offset[c]:
// into three planes (NCHW) or interleaved into `out` (NHWC, 3 values per pixel).
void blend_row_planar_f32(const RowPair& rows, int count, const float* gain, const float* offset, float* out0,
                          float* out1, float* out2, KernelPath path = KernelPath::fastest);
void blend_row_interleaved_f32(const RowPair& rows, int count, const float* gain, const float* offset, float* out);
// Vertical pass of `count` columns into three planes of 8-bit levels.
void blend_row_levels(const RowPair& rows, int count, std::uint8_t* level0, std::uint8_t* level1, std::uint8_t* level2);

}  // namespace detflow::detail
