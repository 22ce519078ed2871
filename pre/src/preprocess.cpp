#include "detflow/pre/preprocess.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <opencv2/core/hal/intrin.hpp>
#include <opencv2/imgproc.hpp>

#include "detflow/error.h"
#include "linear_resize.h"

namespace detflow {
namespace {

std::string size_text(int width, int height) { return std::to_string(width) + "x" + std::to_string(height); }

// Python's round() (half to even): the reference letterbox is computed in Python, and a
// resized size that differs by one pixel shifts every box.
int round_half_even(double value) { return static_cast<int>(std::nearbyint(value)); }

std::uint8_t saturate_to_u8(float value) {
  return static_cast<std::uint8_t>(std::clamp(std::lround(value), long{0}, long{255}));
}

// Writes `count` pixels of one output row. The three pointers are the tensor channels'
// destinations (planes for NCHW, interleaved for NHWC with `step` 3).
template <typename Element>
void convert_pixels(const std::uint8_t* source, int count, const Element* table,
                    const std::array<int, 3>& source_channel, Element* out0, Element* out1, Element* out2, int step) {
  const Element* table0 = table;
  const Element* table1 = table + 256;
  const Element* table2 = table + 512;
  const int source0 = source_channel[0];
  const int source1 = source_channel[1];
  const int source2 = source_channel[2];
  for (int x = 0; x < count; ++x) {
    const std::uint8_t* pixel = source + 3 * x;
    out0[x * step] = table0[pixel[source0]];
    out1[x * step] = table1[pixel[source1]];
    out2[x * step] = table2[pixel[source2]];
  }
}

template <typename Element>
void fill_pixels(int count, const std::array<Element, 3>& pad, Element* out0, Element* out1, Element* out2, int step) {
  if (step == 1) {
    std::fill_n(out0, count, pad[0]);
    std::fill_n(out1, count, pad[1]);
    std::fill_n(out2, count, pad[2]);
    return;
  }
  for (int x = 0; x < count; ++x) {
    out0[x * step] = pad[0];
    out1[x * step] = pad[1];
    out2[x * step] = pad[2];
  }
}

// Writes `count` pixels from three planes of 8-bit levels already in tensor channel order.
template <typename Element>
void convert_levels(const std::uint8_t* level0, const std::uint8_t* level1, const std::uint8_t* level2, int count,
                    const Element* table, Element* out0, Element* out1, Element* out2, int step) {
  const Element* table0 = table;
  const Element* table1 = table + 256;
  const Element* table2 = table + 512;
  for (int x = 0; x < count; ++x) {
    out0[x * step] = table0[level0[x]];
    out1[x * step] = table1[level1[x]];
    out2[x * step] = table2[level2[x]];
  }
}

// float32 planes: deinterleave 16 pixels at a time and apply gain/offset in SIMD
// registers; the lookup-table loop finishes the row.
void convert_planar_f32(const std::uint8_t* source, int count, const std::array<float, 3>& gain,
                        const std::array<float, 3>& offset, const std::array<int, 3>& source_channel,
                        const float* table, float* out0, float* out1, float* out2) {
  int x = 0;
#if CV_SIMD128
  const cv::v_float32x4 gains[3] = {cv::v_setall_f32(gain[0]), cv::v_setall_f32(gain[1]), cv::v_setall_f32(gain[2])};
  const cv::v_float32x4 offsets[3] = {cv::v_setall_f32(offset[0]), cv::v_setall_f32(offset[1]),
                                      cv::v_setall_f32(offset[2])};
  float* outputs[3] = {out0, out1, out2};
  for (; x + 16 <= count; x += 16) {
    cv::v_uint8x16 bgr[3];
    cv::v_load_deinterleave(source + 3 * x, bgr[0], bgr[1], bgr[2]);
    for (int channel = 0; channel < 3; ++channel) {
      cv::v_uint16x8 low16, high16;
      cv::v_expand(bgr[source_channel[static_cast<std::size_t>(channel)]], low16, high16);
      cv::v_uint32x4 parts[4];
      cv::v_expand(low16, parts[0], parts[1]);
      cv::v_expand(high16, parts[2], parts[3]);
      float* destination = outputs[channel] + x;
      for (int part = 0; part < 4; ++part) {
        const cv::v_float32x4 level = cv::v_cvt_f32(cv::v_reinterpret_as_s32(parts[part]));
        cv::v_store(destination + 4 * part, cv::v_muladd(level, gains[channel], offsets[channel]));
      }
    }
  }
#else
  (void)gain;
  (void)offset;
#endif
  convert_pixels(source + 3 * x, count - x, table, source_channel, out0 + x, out1 + x, out2 + x, 1);
}

// Fills one tensor slot row by row: padding rows, then for image rows the left padding,
// the converted pixels and the right padding. `convert_row(image_row, count, out0, out1,
// out2, step)` writes the `count` pixels of row `image_row` of the resized image, which
// is visited top to bottom.
template <typename Element, typename RowConverter>
void write_slot(const Geometry& geometry, Layout layout, const std::array<Element, 3>& pad, Element* slot,
                RowConverter convert_row) {
  const int width = geometry.input_width;
  const int height = geometry.input_height;
  const int left = static_cast<int>(geometry.pad_left);
  const int top = static_cast<int>(geometry.pad_top);
  const int image_width = geometry.resized_width;
  const int image_height = geometry.resized_height;
  const int right = width - left - image_width;
  const std::size_t row_pixels = static_cast<std::size_t>(width);
  const std::size_t plane = row_pixels * static_cast<std::size_t>(height);
  for (int y = 0; y < height; ++y) {
    const std::size_t row = static_cast<std::size_t>(y);
    Element* out0 = layout == Layout::nchw ? slot + row * row_pixels : slot + row * row_pixels * 3;
    Element* out1 = layout == Layout::nchw ? out0 + plane : out0 + 1;
    Element* out2 = layout == Layout::nchw ? out1 + plane : out0 + 2;
    const int step = layout == Layout::nchw ? 1 : 3;
    const int image_row = y - top;
    if (image_row < 0 || image_row >= image_height) {
      fill_pixels(width, pad, out0, out1, out2, step);
      continue;
    }
    fill_pixels(left, pad, out0, out1, out2, step);
    const std::size_t image_start = static_cast<std::size_t>(left) * static_cast<std::size_t>(step);
    convert_row(image_row, image_width, out0 + image_start, out1 + image_start, out2 + image_start, step);
    const std::size_t right_start = static_cast<std::size_t>(left + image_width) * static_cast<std::size_t>(step);
    fill_pixels(right, pad, out0 + right_start, out1 + right_start, out2 + right_start, step);
  }
}

double normalise(const PreprocessSpec& spec, int channel, double level) {
  const auto index = static_cast<std::size_t>(channel);
  return (level * spec.scale - spec.mean[index]) / spec.std[index];
}

}  // namespace

Geometry compute_geometry(const PreprocessSpec& spec, int source_width, int source_height) {
  if (source_width <= 0 || source_height <= 0) {
    throw Error("frame size " + size_text(source_width, source_height) +
                " is empty: expected a positive width and height");
  }
  if (spec.width <= 0 || spec.height <= 0) {
    throw Error("input size " + size_text(spec.width, spec.height) +
                " is invalid: expected a positive width and height, e.g. 640x640");
  }
  Geometry geometry;
  geometry.source_width = source_width;
  geometry.source_height = source_height;
  geometry.input_width = spec.width;
  geometry.input_height = spec.height;
  if (spec.resize == ResizeMode::stretch) {
    geometry.resized_width = spec.width;
    geometry.resized_height = spec.height;
    geometry.scale_x = static_cast<double>(spec.width) / source_width;
    geometry.scale_y = static_cast<double>(spec.height) / source_height;
    return geometry;
  }
  const double ratio =
      std::min(static_cast<double>(spec.width) / source_width, static_cast<double>(spec.height) / source_height);
  geometry.resized_width = std::clamp(round_half_even(source_width * ratio), 1, spec.width);
  geometry.resized_height = std::clamp(round_half_even(source_height * ratio), 1, spec.height);
  geometry.scale_x = ratio;
  geometry.scale_y = ratio;
  if (spec.resize == ResizeMode::letterbox_center) {
    geometry.pad_left = static_cast<double>(std::lround((spec.width - geometry.resized_width) / 2.0 - 0.1));
    geometry.pad_top = static_cast<double>(std::lround((spec.height - geometry.resized_height) / 2.0 - 0.1));
  }
  return geometry;
}

Preprocessor::Preprocessor(const PreprocessSpec& spec) : spec_(spec) {
  if (spec_.width <= 0 || spec_.height <= 0) {
    throw Error("input size " + size_text(spec_.width, spec_.height) +
                " is invalid: expected a positive width and height, e.g. 640x640");
  }
  if (spec_.type != ElementType::float32 && spec_.type != ElementType::float16 && spec_.type != ElementType::uint8) {
    throw Error("input element type '" + std::string(element_type_name(spec_.type)) +
                "' is not supported by preprocessing: expected float, float16 or uint8");
  }
  for (std::size_t channel = 0; channel < 3; ++channel) {
    if (spec_.std[channel] == 0.0 || !std::isfinite(spec_.std[channel])) {
      throw Error("std[" + std::to_string(channel) + "] = " + std::to_string(spec_.std[channel]) +
                  " is invalid: expected a finite non-zero value");
    }
  }
  value_table_f32_.resize(3 * 256);
  value_table_f16_.resize(3 * 256);
  value_table_u8_.resize(3 * 256);
  for (int channel = 0; channel < 3; ++channel) {
    const auto index = static_cast<std::size_t>(channel);
    // Tensor channel 0 is red for RGB tensors, i.e. BGR channel 2.
    source_channel_[index] = spec_.color == ColorOrder::rgb ? 2 - channel : channel;
    channel_gain_[index] = static_cast<float>(spec_.scale / spec_.std[index]);
    channel_offset_[index] = static_cast<float>(-spec_.mean[index] / spec_.std[index]);
    for (int level = 0; level < 256; ++level) {
      const auto value = static_cast<float>(normalise(spec_, channel, level));
      const std::size_t entry = index * 256 + static_cast<std::size_t>(level);
      value_table_f32_[entry] = value;
      value_table_f16_[entry] = float_to_half(value);
      value_table_u8_[entry] = saturate_to_u8(value);
    }
  }
}

void Preprocessor::prepare(Tensor& tensor, int batch) const {
  if (batch <= 0) throw Error("batch size " + std::to_string(batch) + " is invalid: expected 1 or more");
  const std::int64_t width = spec_.width;
  const std::int64_t height = spec_.height;
  if (spec_.layout == Layout::nchw) {
    tensor.reshape(spec_.type, {batch, 3, height, width});
  } else {
    tensor.reshape(spec_.type, {batch, height, width, 3});
  }
}

void Preprocessor::check_slot(const Tensor& tensor, int batch_index) const {
  const std::int64_t width = spec_.width;
  const std::int64_t height = spec_.height;
  const bool shaped =
      tensor.type() == spec_.type && tensor.rank() == 4 &&
      (spec_.layout == Layout::nchw ? tensor.dim(1) == 3 && tensor.dim(2) == height && tensor.dim(3) == width
                                    : tensor.dim(1) == height && tensor.dim(2) == width && tensor.dim(3) == 3);
  if (!shaped) {
    throw Error("input tensor of type '" + std::string(element_type_name(tensor.type())) + "' and rank " +
                std::to_string(tensor.rank()) + " does not match the preprocessing spec " +
                size_text(spec_.width, spec_.height) + ": shape it with Preprocessor::prepare()");
  }
  if (batch_index < 0 || batch_index >= tensor.dim(0)) {
    throw Error("batch index " + std::to_string(batch_index) + " is outside the tensor's batch of " +
                std::to_string(tensor.dim(0)) + ": expected 0.." + std::to_string(tensor.dim(0) - 1));
  }
}

namespace {

// Writes a whole slot of the spec's element type: `f32_row(image_row, count, out0, out1,
// out2, step)` writes float32 image rows (planes for step 1, interleaved for step 3);
// `table_row(image_row, count, table, out0, out1, out2, step)` writes float16 and uint8
// image rows through the per-level tables.
template <typename F32Row, typename TableRow>
void write_typed_slot(const PreprocessSpec& spec, const Geometry& geometry, Tensor& tensor, int batch_index,
                      const std::uint16_t* table_f16, const std::uint8_t* table_u8, F32Row f32_row,
                      TableRow table_row) {
  const std::size_t slot_elements = 3 * static_cast<std::size_t>(spec.width) * static_cast<std::size_t>(spec.height);
  const std::size_t slot_offset = slot_elements * static_cast<std::size_t>(batch_index);
  std::array<double, 3> pad{};
  for (int channel = 0; channel < 3; ++channel) {
    pad[static_cast<std::size_t>(channel)] = normalise(spec, channel, spec.pad_value);
  }
  switch (spec.type) {
    case ElementType::float32: {
      const std::array<float, 3> pad_f32{static_cast<float>(pad[0]), static_cast<float>(pad[1]),
                                         static_cast<float>(pad[2])};
      write_slot(geometry, spec.layout, pad_f32, tensor.data<float>() + slot_offset, f32_row);
      break;
    }
    case ElementType::float16: {
      const std::array<std::uint16_t, 3> pad_f16{float_to_half(static_cast<float>(pad[0])),
                                                 float_to_half(static_cast<float>(pad[1])),
                                                 float_to_half(static_cast<float>(pad[2]))};
      write_slot(geometry, spec.layout, pad_f16, tensor.data<std::uint16_t>() + slot_offset,
                 [&](int image_row, int count, std::uint16_t* out0, std::uint16_t* out1, std::uint16_t* out2,
                     int step) { table_row(image_row, count, table_f16, out0, out1, out2, step); });
      break;
    }
    default: {
      const std::array<std::uint8_t, 3> pad_u8{saturate_to_u8(static_cast<float>(pad[0])),
                                               saturate_to_u8(static_cast<float>(pad[1])),
                                               saturate_to_u8(static_cast<float>(pad[2]))};
      write_slot(geometry, spec.layout, pad_u8, tensor.data<std::uint8_t>() + slot_offset,
                 [&](int image_row, int count, std::uint8_t* out0, std::uint8_t* out1, std::uint8_t* out2, int step) {
                   table_row(image_row, count, table_u8, out0, out1, out2, step);
                 });
      break;
    }
  }
}

}  // namespace

void Preprocessor::write_tensor(const cv::Mat& resized, const Geometry& geometry, Tensor& tensor,
                                int batch_index) const {
  const auto& source_channel = source_channel_;
  const float* table_f32 = value_table_f32_.data();
  write_typed_slot(
      spec_, geometry, tensor, batch_index, value_table_f16_.data(), value_table_u8_.data(),
      [&](int image_row, int count, float* out0, float* out1, float* out2, int step) {
        const std::uint8_t* source = resized.ptr<std::uint8_t>(image_row);
        if (step == 1) {
          convert_planar_f32(source, count, channel_gain_, channel_offset_, source_channel, table_f32, out0, out1,
                             out2);
        } else {
          convert_pixels(source, count, table_f32, source_channel, out0, out1, out2, step);
        }
      },
      [&](int image_row, int count, const auto* table, auto* out0, auto* out1, auto* out2, int step) {
        convert_pixels(resized.ptr<std::uint8_t>(image_row), count, table, source_channel, out0, out1, out2, step);
      });
}

void Preprocessor::write_resized(const cv::Mat& frame, const Geometry& geometry, Tensor& tensor, int batch_index) {
  detail::LinearResizeTables& tables = resize_tables_;
  const int width = geometry.resized_width;
  if (tables.source_width != frame.cols || tables.source_height != frame.rows || tables.width != width ||
      tables.height != geometry.resized_height) {
    detail::build_linear_resize_tables(frame.cols, frame.rows, width, geometry.resized_height, tables);
  }
  // Planes padded to whole 8-column vectors: the vertical pass reads them vector by vector.
  const std::size_t plane_stride = (static_cast<std::size_t>(width) + 7) / 8 * 8;
  const std::size_t row_stride = 3 * plane_stride;
  if (resize_rows_.size() < 2 * row_stride) resize_rows_.assign(2 * row_stride, 0);
  if (level_row_.size() < row_stride) level_row_.resize(row_stride);

  // A ring of two horizontally resized source rows, as in cv::resize: going down the
  // output, a source row needed by consecutive output rows is resized once.
  std::array<int, 2> ring_source{-1, -1};
  std::int16_t* const ring = resize_rows_.data();
  const auto plane = [&](int slot, int channel) {
    return ring + static_cast<std::size_t>(slot) * row_stride + static_cast<std::size_t>(channel) * plane_stride;
  };
  const auto resize_into = [&](int slot, int source_row) {
    detail::resize_row_horizontal(frame.ptr<std::uint8_t>(source_row), tables, plane(slot, 0), plane(slot, 1),
                                  plane(slot, 2));
    ring_source[static_cast<std::size_t>(slot)] = source_row;
  };
  const auto rows_for = [&](int image_row) {
    const auto index = 2 * static_cast<std::size_t>(image_row);
    const int first_row = tables.row_source[index];
    const int second_row = tables.row_source[index + 1];
    int first = ring_source[0] == first_row ? 0 : ring_source[1] == first_row ? 1 : -1;
    if (first < 0) {
      first = ring_source[0] == second_row ? 1 : 0;  // keep the other needed row
      resize_into(first, first_row);
    }
    int second = first;
    if (second_row != first_row) {
      second = 1 - first;
      if (ring_source[static_cast<std::size_t>(second)] != second_row) resize_into(second, second_row);
    }
    detail::RowPair pair{};
    for (int channel = 0; channel < 3; ++channel) {
      const int source_channel = source_channel_[static_cast<std::size_t>(channel)];
      pair.first[channel] = plane(first, source_channel);
      pair.second[channel] = plane(second, source_channel);
    }
    pair.first_weight = tables.row_weight[index];
    pair.second_weight = tables.row_weight[index + 1];
    return pair;
  };

  std::uint8_t* const levels = level_row_.data();
  write_typed_slot(
      spec_, geometry, tensor, batch_index, value_table_f16_.data(), value_table_u8_.data(),
      [&](int image_row, int count, float* out0, float* out1, float* out2, int step) {
        const detail::RowPair pair = rows_for(image_row);
        if (step == 1) {
          detail::blend_row_planar_f32(pair, count, channel_gain_.data(), channel_offset_.data(), out0, out1, out2);
        } else {
          detail::blend_row_interleaved_f32(pair, count, channel_gain_.data(), channel_offset_.data(), out0);
        }
      },
      [&](int image_row, int count, const auto* table, auto* out0, auto* out1, auto* out2, int step) {
        const detail::RowPair pair = rows_for(image_row);
        std::uint8_t* level0 = levels;
        std::uint8_t* level1 = levels + plane_stride;
        std::uint8_t* level2 = levels + 2 * plane_stride;
        detail::blend_row_levels(pair, count, level0, level1, level2);
        convert_levels(level0, level1, level2, count, table, out0, out1, out2, step);
      });
}

namespace {

// Converts CV_8UC1/CV_8UC4 frames to BGR into `converted` (reused); returns the BGR frame.
template <typename Image>
const Image& as_bgr(const Image& frame, Image& converted) {
  if (frame.empty()) throw Error("frame is empty: expected an 8-bit BGR image (CV_8UC3)");
  switch (frame.type()) {
    case CV_8UC3:
      return frame;
    case CV_8UC1:
      cv::cvtColor(frame, converted, cv::COLOR_GRAY2BGR);
      return converted;
    case CV_8UC4:
      cv::cvtColor(frame, converted, cv::COLOR_BGRA2BGR);
      return converted;
    default:
      throw Error("frame pixel type " + cv::typeToString(frame.type()) +
                  " is not supported: expected CV_8UC3 (BGR), CV_8UC1 or CV_8UC4");
  }
}

}  // namespace

Geometry Preprocessor::run(const cv::Mat& frame, Tensor& tensor, int batch_index) {
  check_slot(tensor, batch_index);
  const cv::Mat& bgr = as_bgr(frame, converted_);
  const Geometry geometry = compute_geometry(spec_, bgr.cols, bgr.rows);
  if (geometry.resized_width == bgr.cols && geometry.resized_height == bgr.rows) {
    write_tensor(bgr, geometry, tensor, batch_index);
    return geometry;
  }
  write_resized(bgr, geometry, tensor, batch_index);
  return geometry;
}

Geometry Preprocessor::run(const cv::UMat& frame, Tensor& tensor, int batch_index) {
  check_slot(tensor, batch_index);
  const cv::UMat& bgr = as_bgr(frame, converted_device_);
  const Geometry geometry = compute_geometry(spec_, bgr.cols, bgr.rows);
  // A view into the input-size storage: cv::resize keeps a destination of the right size
  // and type, so frames of any size reuse one buffer.
  if (resized_storage_.empty()) resized_storage_.create(spec_.height, spec_.width, CV_8UC3);
  cv::Mat resized(geometry.resized_height, geometry.resized_width, CV_8UC3, resized_storage_.data);
  if (geometry.resized_width == bgr.cols && geometry.resized_height == bgr.rows) {
    bgr.copyTo(resized);
  } else {
    cv::resize(bgr, resized_device_, resized.size(), 0, 0, cv::INTER_LINEAR);
    resized_device_.copyTo(resized);
  }
  write_tensor(resized, geometry, tensor, batch_index);
  return geometry;
}

}  // namespace detflow
