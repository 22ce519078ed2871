#include "linear_resize.h"

#include <algorithm>
#include <cstring>

#include <opencv2/core.hpp>
#include <opencv2/core/hal/intrin.hpp>

#ifdef DETFLOW_HAVE_AVX2_KERNELS
#include "linear_resize_avx2.h"
#endif

namespace detflow::detail {
namespace {

constexpr int weight_scale = 2048;  // OpenCV's INTER_RESIZE_COEF_SCALE (11 fractional bits)

// One axis of the tables: source index and weight pair per output index. The arithmetic
// (double position, float fraction, cvFloor, saturate_cast rounding half to even) is
// OpenCV's; a different but "equivalent" formula changes some weights by one.
struct AxisSample {
  int source;
  float fraction;
};
AxisSample sample_axis(int index, double scale) {
  auto position = static_cast<float>((index + 0.5) * scale - 0.5);
  const int source = cvFloor(position);
  position -= static_cast<float>(source);
  return {source, position};
}

std::int16_t weight(float fraction) { return cv::saturate_cast<std::int16_t>(fraction * weight_scale); }

#ifdef DETFLOW_HAVE_AVX2_KERNELS
bool use_avx2(KernelPath path) { return path == KernelPath::fastest && avx2::avx2_usable(); }
#endif

// The vertical rounding of VResizeLinear<uchar> on (h >> 4) values; at most 255.
inline int blend_level(int first, int second, int first_weight, int second_weight) {
  return (((first_weight * first) >> 16) + ((second_weight * second) >> 16) + 2) >> 2;
}

#if CV_SIMD128
// Eight columns' levels: _mm_mulhi_epi16 is exactly (w * h) >> 16 for these non-negative
// 16-bit operands, and the sum stays far below the saturation of the 16-bit add.
inline cv::v_int16x8 blend_levels(const std::int16_t* first, const std::int16_t* second, const cv::v_int16x8& w0,
                                  const cv::v_int16x8& w1) {
  return (cv::v_mul_hi(cv::v_load(first), w0) + cv::v_mul_hi(cv::v_load(second), w1) + cv::v_setall_s16(2)) >> 2;
}

inline void levels_to_f32(const cv::v_int16x8& levels, const cv::v_float32x4& gain, const cv::v_float32x4& offset,
                          cv::v_float32x4& low, cv::v_float32x4& high) {
  cv::v_uint32x4 low32, high32;  // levels are 0..255: zero extension is cheaper than sign extension
  cv::v_expand(cv::v_reinterpret_as_u16(levels), low32, high32);
  low = cv::v_muladd(cv::v_cvt_f32(cv::v_reinterpret_as_s32(low32)), gain, offset);
  high = cv::v_muladd(cv::v_cvt_f32(cv::v_reinterpret_as_s32(high32)), gain, offset);
}

// Four columns' source pixel pairs, regrouped as one (left, right) 16-bit pair per column
// and channel: blue = [B(c0) B'(c0) B(c1) B'(c1) ...], ready for one multiply-add by the
// columns' weight pairs. Each column's 8-byte load holds both of its pixels; two columns
// share a register, whose byte shift by one pixel lines each left pixel up with its right
// neighbour in both halves at once (a half's last bytes, mixed with the other half's, go
// unused).
inline void gather_pairs(const std::uint8_t* row, const int* offset, cv::v_uint16x8& blue, cv::v_uint16x8& green,
                         cv::v_uint16x8& red) {
  const cv::v_uint8x16 columns01 = cv::v_load_halves(row + offset[0], row + offset[1]);  // B G R B' G' R' . . x2
  const cv::v_uint8x16 columns23 = cv::v_load_halves(row + offset[2], row + offset[3]);
  cv::v_uint8x16 pairs0, pairs1, pairs2, pairs3;  // B B' G G' R R' . .
  cv::v_zip(columns01, cv::v_rotate_right<3>(columns01), pairs0, pairs1);
  cv::v_zip(columns23, cv::v_rotate_right<3>(columns23), pairs2, pairs3);
  cv::v_uint16x8 first_two, second_two, unused16;
  cv::v_zip(cv::v_reinterpret_as_u16(pairs0), cv::v_reinterpret_as_u16(pairs1), first_two, unused16);
  cv::v_zip(cv::v_reinterpret_as_u16(pairs2), cv::v_reinterpret_as_u16(pairs3), second_two, unused16);
  cv::v_uint32x4 blue_green, red_rest;  // as bytes: BB' x4 GG' x4 / RR' x4 . .
  cv::v_zip(cv::v_reinterpret_as_u32(first_two), cv::v_reinterpret_as_u32(second_two), blue_green, red_rest);
  cv::v_uint16x8 unused_red;
  cv::v_expand(cv::v_reinterpret_as_u8(blue_green), blue, green);
  cv::v_expand(cv::v_reinterpret_as_u8(red_rest), red, unused_red);
}

inline cv::v_int32x4 horizontal_sum(const cv::v_uint16x8& pairs, const cv::v_int16x8& weights) {
  return cv::v_dotprod(cv::v_reinterpret_as_s16(pairs), weights) >> 4;
}
#endif

}  // namespace

void build_linear_resize_tables(int source_width, int source_height, int width, int height,
                                LinearResizeTables& tables) {
  tables.source_width = source_width;
  tables.source_height = source_height;
  tables.width = width;
  tables.height = height;
  tables.column_offset.resize(static_cast<std::size_t>(width));
  tables.column_weight.resize(2 * static_cast<std::size_t>(width));
  tables.column_weight_high.resize(2 * static_cast<std::size_t>(width));
  tables.column_weight_low.resize(2 * static_cast<std::size_t>(width));
  tables.row_source.resize(2 * static_cast<std::size_t>(height));
  tables.row_weight.resize(2 * static_cast<std::size_t>(height));
  // cv::resize passes the inverse scale dw / sw and inverts it: keep both roundings.
  const double scale_x = 1.0 / (static_cast<double>(width) / source_width);
  const double scale_y = 1.0 / (static_cast<double>(height) / source_height);
  tables.vector_columns = 0;
  for (int x = 0; x < width; ++x) {
    AxisSample sample = sample_axis(x, scale_x);
    if (sample.source < 0) sample = {0, 0.0f};
    if (sample.source >= source_width - 1) sample = {source_width - 1, 0.0f};
    const auto index = static_cast<std::size_t>(x);
    tables.column_offset[index] = 3 * sample.source;
    tables.column_weight[2 * index] = weight(1.0f - sample.fraction);
    tables.column_weight[2 * index + 1] = weight(sample.fraction);
    // Weights are 0..2049 (the two roundings may add up to one more than 2048): high <= 32.
    for (std::size_t pixel = 2 * index; pixel < 2 * index + 2; ++pixel) {
      tables.column_weight_high[pixel] = static_cast<std::int8_t>(tables.column_weight[pixel] / 64);
      tables.column_weight_low[pixel] = static_cast<std::int8_t>(tables.column_weight[pixel] % 64);
    }
    // The SIMD gather reads 8 bytes from the left pixel: stay inside the row.
    if (3 * sample.source + 8 <= 3 * source_width) tables.vector_columns = x + 1;
  }
  for (int y = 0; y < height; ++y) {
    // Rows are clamped after the weights are taken (OpenCV clips the row index only).
    const AxisSample sample = sample_axis(y, scale_y);
    const auto index = 2 * static_cast<std::size_t>(y);
    tables.row_source[index] = std::clamp(sample.source, 0, source_height - 1);
    tables.row_source[index + 1] = std::clamp(sample.source + 1, 0, source_height - 1);
    tables.row_weight[index] = weight(1.0f - sample.fraction);
    tables.row_weight[index + 1] = weight(sample.fraction);
  }
}

void resize_row_horizontal(const std::uint8_t* source_row, const LinearResizeTables& tables, std::int16_t* blue,
                           std::int16_t* green, std::int16_t* red, [[maybe_unused]] KernelPath path) {
  const int* offsets = tables.column_offset.data();
  const std::int16_t* weights = tables.column_weight.data();
  // Locals, not members: vector stores may alias anything, which would reload them.
  const int width = tables.width;
  const int vector_columns = tables.vector_columns;
  int x = 0;
#ifdef DETFLOW_HAVE_AVX2_KERNELS
  // Twice the columns per instruction and byte multiply-adds: the pass takes half the time.
  if (use_avx2(path)) {
    x = avx2::resize_row_horizontal(source_row, offsets, tables.column_weight_high.data(),
                                    tables.column_weight_low.data(), vector_columns, blue, green, red);
  }
#endif
#if CV_SIMD128
  // Offsets are non-decreasing, so every column before vector_columns may load 8 bytes.
  for (; x + 8 <= vector_columns; x += 8) {
    cv::v_uint16x8 b0, g0, r0, b1, g1, r1;
    gather_pairs(source_row, offsets + x, b0, g0, r0);
    gather_pairs(source_row, offsets + x + 4, b1, g1, r1);
    const cv::v_int16x8 w0 = cv::v_load(weights + 2 * x);
    const cv::v_int16x8 w1 = cv::v_load(weights + 2 * x + 8);
    cv::v_store(blue + x, cv::v_pack(horizontal_sum(b0, w0), horizontal_sum(b1, w1)));
    cv::v_store(green + x, cv::v_pack(horizontal_sum(g0, w0), horizontal_sum(g1, w1)));
    cv::v_store(red + x, cv::v_pack(horizontal_sum(r0, w0), horizontal_sum(r1, w1)));
  }
  if (x + 4 <= vector_columns) {
    cv::v_uint16x8 b, g, r;
    gather_pairs(source_row, offsets + x, b, g, r);
    const cv::v_int16x8 w = cv::v_load(weights + 2 * x);
    const cv::v_int32x4 hb = horizontal_sum(b, w), hg = horizontal_sum(g, w), hr = horizontal_sum(r, w);
    cv::v_store_low(blue + x, cv::v_pack(hb, hb));
    cv::v_store_low(green + x, cv::v_pack(hg, hg));
    cv::v_store_low(red + x, cv::v_pack(hr, hr));
    x += 4;
  }
#endif
  // The right pixel of the last columns is clamped to the row; its weight is 0 there.
  const int last_offset = 3 * (tables.source_width - 1);
  for (; x < width; ++x) {
    const std::uint8_t* left = source_row + offsets[x];
    const std::uint8_t* right = source_row + std::min(offsets[x] + 3, last_offset);
    const int w0 = weights[2 * x];
    const int w1 = weights[2 * x + 1];
    blue[x] = static_cast<std::int16_t>((left[0] * w0 + right[0] * w1) >> 4);
    green[x] = static_cast<std::int16_t>((left[1] * w0 + right[1] * w1) >> 4);
    red[x] = static_cast<std::int16_t>((left[2] * w0 + right[2] * w1) >> 4);
  }
}

void blend_row_planar_f32(const RowPair& rows, int count, const float* gain, const float* offset, float* out0,
                          float* out1, float* out2, [[maybe_unused]] KernelPath path) {
  float* outputs[3] = {out0, out1, out2};
#ifdef DETFLOW_HAVE_AVX2_KERNELS
  const bool avx2_blend = use_avx2(path);
#endif
  for (int channel = 0; channel < 3; ++channel) {
    const std::int16_t* first = rows.first[channel];
    const std::int16_t* second = rows.second[channel];
    float* out = outputs[channel];
    int x = 0;
#ifdef DETFLOW_HAVE_AVX2_KERNELS
    if (avx2_blend) {
      x = avx2::blend_row_f32(first, second, rows.first_weight, rows.second_weight, count, gain[channel],
                              offset[channel], out);
    }
#endif
#if CV_SIMD128
    const cv::v_int16x8 w0 = cv::v_setall_s16(rows.first_weight);
    const cv::v_int16x8 w1 = cv::v_setall_s16(rows.second_weight);
    const cv::v_float32x4 g = cv::v_setall_f32(gain[channel]);
    const cv::v_float32x4 o = cv::v_setall_f32(offset[channel]);
    for (; x < count; x += 8) {
      cv::v_float32x4 low, high;
      levels_to_f32(blend_levels(first + x, second + x, w0, w1), g, o, low, high);
      if (x + 8 <= count) {
        cv::v_store(out + x, low);
        cv::v_store(out + x + 4, high);
      } else {
        // Planes are readable in whole vectors, the tensor row is not: the same SIMD
        // arithmetic as the row's body, so the tail's values match it exactly.
        float tail[8];
        cv::v_store(tail, low);
        cv::v_store(tail + 4, high);
        std::memcpy(out + x, tail, static_cast<std::size_t>(count - x) * sizeof(float));
      }
    }
#else
    for (; x < count; ++x) {
      const int level = blend_level(first[x], second[x], rows.first_weight, rows.second_weight);
      out[x] = static_cast<float>(level) * gain[channel] + offset[channel];
    }
#endif
  }
}

void blend_row_interleaved_f32(const RowPair& rows, int count, const float* gain, const float* offset, float* out) {
  int x = 0;
#if CV_SIMD128
  const cv::v_int16x8 w0 = cv::v_setall_s16(rows.first_weight);
  const cv::v_int16x8 w1 = cv::v_setall_s16(rows.second_weight);
  cv::v_float32x4 g[3], o[3];
  for (int channel = 0; channel < 3; ++channel) {
    g[channel] = cv::v_setall_f32(gain[channel]);
    o[channel] = cv::v_setall_f32(offset[channel]);
  }
  for (; x < count; x += 8) {
    cv::v_float32x4 low[3], high[3];
    for (int channel = 0; channel < 3; ++channel) {
      levels_to_f32(blend_levels(rows.first[channel] + x, rows.second[channel] + x, w0, w1), g[channel], o[channel],
                    low[channel], high[channel]);
    }
    if (x + 8 <= count) {
      cv::v_store_interleave(out + 3 * x, low[0], low[1], low[2]);
      cv::v_store_interleave(out + 3 * x + 12, high[0], high[1], high[2]);
    } else {
      float tail[24];
      cv::v_store_interleave(tail, low[0], low[1], low[2]);
      cv::v_store_interleave(tail + 12, high[0], high[1], high[2]);
      std::memcpy(out + 3 * x, tail, static_cast<std::size_t>(3 * (count - x)) * sizeof(float));
    }
  }
#else
  for (; x < count; ++x) {
    for (int channel = 0; channel < 3; ++channel) {
      const int level =
          blend_level(rows.first[channel][x], rows.second[channel][x], rows.first_weight, rows.second_weight);
      out[3 * x + channel] = static_cast<float>(level) * gain[channel] + offset[channel];
    }
  }
#endif
}

void blend_row_levels(const RowPair& rows, int count, std::uint8_t* level0, std::uint8_t* level1,
                      std::uint8_t* level2) {
  std::uint8_t* levels[3] = {level0, level1, level2};
  for (int channel = 0; channel < 3; ++channel) {
    const std::int16_t* first = rows.first[channel];
    const std::int16_t* second = rows.second[channel];
    std::uint8_t* out = levels[channel];
    int x = 0;
#if CV_SIMD128
    const cv::v_int16x8 w0 = cv::v_setall_s16(rows.first_weight);
    const cv::v_int16x8 w1 = cv::v_setall_s16(rows.second_weight);
    for (; x + 8 <= count; x += 8) cv::v_pack_u_store(out + x, blend_levels(first + x, second + x, w0, w1));
#endif
    for (; x < count; ++x) {
      out[x] = static_cast<std::uint8_t>(blend_level(first[x], second[x], rows.first_weight, rows.second_weight));
    }
  }
}

}  // namespace detflow::detail
