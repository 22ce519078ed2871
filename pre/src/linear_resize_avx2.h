// Internal to detflow_pre: AVX2 versions of the hottest linear-resize row steps
// (linear_resize.h states the arithmetic they reproduce). Built only on x86 with GCC or
// Clang, in a file compiled with -mavx2; call them only when avx2_usable() is true.
//
// Each function does the leading part of a row in 16-column blocks and returns how many
// columns it did; the caller finishes the row with the portable code. The interface uses
// raw pointers only, so that no C++ template gets instantiated with AVX2 instructions in
// the AVX2 file (the linker could otherwise pick that copy for callers on older CPUs).
#pragma once

#include <cstdint>

namespace detflow::detail::avx2 {

// True when the CPU and the operating system support AVX2 (checked once).
bool avx2_usable();

// Horizontal pass of one 8-bit BGR source row for the columns before `vector_columns`
// (those whose 8-byte read from the left pixel stays in the row). `weight_high` and
// `weight_low` hold each column's two weights split as weight = 64 * high + low, as
// interleaved signed-byte pairs. Writes (h >> 4) into the three planes.
int resize_row_horizontal(const std::uint8_t* source_row, const int* column_offset, const std::int8_t* weight_high,
                          const std::int8_t* weight_low, int vector_columns, std::int16_t* blue, std::int16_t* green,
                          std::int16_t* red);

// Vertical pass of one channel to value = level * gain + offset (multiply, then add: no
// fused multiply-add, so the values equal the portable code's).
int blend_row_f32(const std::int16_t* first, const std::int16_t* second, std::int16_t first_weight,
                  std::int16_t second_weight, int count, float gain, float offset, float* out);

}  // namespace detflow::detail::avx2
