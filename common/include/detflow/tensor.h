// detflow/tensor.h — the dense tensor that flows between pre, inference and post.
//
// Ownership: a Tensor owns one contiguous, 64-byte aligned buffer. Reshaping to a size
// that fits the current capacity never reallocates, so a Tensor kept per worker costs no
// allocation per frame in steady state. Copying copies the buffer; moving is cheap.
// Thread-safety: none; one writer at a time, as for any value type.
// Layout: row-major (C order), shape in elements, outermost dimension first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace detflow {

enum class ElementType : std::uint8_t { float32, float16, uint8, int8, int32, int64, boolean, unknown };

constexpr std::size_t element_size(ElementType type) {
  switch (type) {
    case ElementType::float32:
    case ElementType::int32:
      return 4;
    case ElementType::float16:
      return 2;
    case ElementType::uint8:
    case ElementType::int8:
    case ElementType::boolean:
      return 1;
    case ElementType::int64:
      return 8;
    case ElementType::unknown:
      return 0;
  }
  return 0;
}

// Lower-case names as ONNX spells them ("float", "float16", "uint8", ...).
constexpr std::string_view element_type_name(ElementType type) {
  switch (type) {
    case ElementType::float32:
      return "float";
    case ElementType::float16:
      return "float16";
    case ElementType::uint8:
      return "uint8";
    case ElementType::int8:
      return "int8";
    case ElementType::int32:
      return "int32";
    case ElementType::int64:
      return "int64";
    case ElementType::boolean:
      return "bool";
    case ElementType::unknown:
      return "unknown";
  }
  return "unknown";
}

class Tensor {
 public:
  Tensor() = default;
  Tensor(ElementType type, std::vector<std::int64_t> shape) { reshape(type, std::move(shape)); }

  Tensor(const Tensor& other) { *this = other; }
  Tensor& operator=(const Tensor& other) {
    if (this != &other) {
      name = other.name;
      reshape(other.type_, other.shape_);
      if (other.byte_size() > 0) std::memcpy(buffer_.get(), other.buffer_.get(), other.byte_size());
    }
    return *this;
  }
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  // Sets type and shape; reallocates only when the new byte size exceeds the capacity.
  // Contents are unspecified afterwards.
  void reshape(ElementType type, std::vector<std::int64_t> shape) {
    type_ = type;
    shape_ = std::move(shape);
    const std::size_t bytes = byte_size();
    if (bytes > capacity_) {
      buffer_.reset(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64})));
      capacity_ = bytes;
    }
  }

  ElementType type() const { return type_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t dim(std::size_t axis) const { return shape_.at(axis); }
  std::size_t rank() const { return shape_.size(); }
  std::size_t element_count() const {
    if (shape_.empty()) return type_ == ElementType::unknown ? 0 : 1;
    return static_cast<std::size_t>(
        std::accumulate(shape_.begin(), shape_.end(), std::int64_t{1}, std::multiplies<>()));
  }
  std::size_t byte_size() const { return element_count() * element_size(type_); }

  std::byte* bytes() { return buffer_.get(); }
  const std::byte* bytes() const { return buffer_.get(); }
  template <typename T>
  T* data() {
    return reinterpret_cast<T*>(buffer_.get());
  }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(buffer_.get());
  }
  template <typename T>
  std::span<const T> view() const {
    return {data<T>(), element_count()};
  }

  // Optional name, e.g. the ONNX graph input or output it belongs to.
  std::string name;

 private:
  struct AlignedDelete {
    void operator()(std::byte* pointer) const { ::operator delete[](pointer, std::align_val_t{64}); }
  };
  ElementType type_ = ElementType::unknown;
  std::vector<std::int64_t> shape_;
  std::unique_ptr<std::byte[], AlignedDelete> buffer_;
  std::size_t capacity_ = 0;
};

// IEEE 754 binary16 <-> binary32, round to nearest even. Scalar helpers for tests and
// cold paths; hot paths convert whole buffers with OpenCV's vectorised cv::Mat::convertTo
// (CV_16F <-> CV_32F), which gives the same results.
inline float half_to_float(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  std::uint32_t exponent = (half >> 10) & 0x1Fu;
  std::uint32_t mantissa = half & 0x3FFu;
  std::uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      mantissa &= 0x3FFu;
      bits = sign | (exponent << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float result;
  std::memcpy(&result, &bits, sizeof result);
  return result;
}

inline std::uint16_t float_to_half(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x7F800000u) {  // inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7C00u | (magnitude > 0x7F800000u ? 0x200u : 0u));
  }
  if (magnitude >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // overflow
  if (magnitude < 0x38800000u) {                                                    // subnormal or zero in half
    if (magnitude < 0x33000000u) return sign;
    const std::uint32_t shift = 113 - (magnitude >> 23);
    const std::uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
    std::uint32_t half_mantissa = mantissa >> (shift + 13);
    const std::uint32_t remainder = mantissa & ((1u << (shift + 13)) - 1);
    const std::uint32_t halfway = 1u << (shift + 12);
    if (remainder > halfway || (remainder == halfway && (half_mantissa & 1u))) ++half_mantissa;
    return static_cast<std::uint16_t>(sign | half_mantissa);
  }
  std::uint32_t half_bits = ((magnitude - 0x38000000u) >> 13);
  const std::uint32_t remainder = magnitude & 0x1FFFu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half_bits & 1u))) ++half_bits;
  return static_cast<std::uint16_t>(sign | half_bits);
}

}  // namespace detflow
