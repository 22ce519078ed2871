// Compiled with -mavx2. Only intrinsics and plain functions here (see linear_resize_avx2.h).
#include "linear_resize_avx2.h"

#include <immintrin.h>

namespace detflow::detail::avx2 {
namespace {

// Two columns' source pixel pairs (left pixel, right neighbour: 6 of the 8 bytes read).
inline __m128i load_two_columns(const std::uint8_t* row, int first_offset, int second_offset) {
  return _mm_unpacklo_epi64(_mm_loadu_si64(row + first_offset), _mm_loadu_si64(row + second_offset));
}

// Columns (c, c + 1) in the low lane and (c + 8, c + 9) in the high lane, so that the
// lane-wise shuffles below leave columns c..c+7 in the low lane and c+8..c+15 in the high.
inline __m256i load_column_pairs(const std::uint8_t* row, const int* offset) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(load_two_columns(row, offset[0], offset[1])),
                                 load_two_columns(row, offset[8], offset[9]), 1);
}

// h >> 4 of eight columns per lane from their (left, right) byte pairs. With
// weight = 64 * high + low (0 <= high <= 32, 0 <= low < 64), h = 64 * A + B where
// A = left * high0 + right * high1 <= 8160 and B = left * low0 + right * low1 <= 32130,
// both exact in pmaddubsw's 16 bits; and since 64 * A is a multiple of 16,
// h >> 4 = 4 * A + (B >> 4) exactly.
inline __m256i horizontal_sum(__m256i pairs, __m256i weight_high, __m256i weight_low) {
  const __m256i high = _mm256_maddubs_epi16(pairs, weight_high);
  const __m256i low = _mm256_maddubs_epi16(pairs, weight_low);
  return _mm256_add_epi16(_mm256_slli_epi16(high, 2), _mm256_srli_epi16(low, 4));
}

}  // namespace

bool avx2_usable() {
  static const bool usable = __builtin_cpu_supports("avx2");
  return usable;
}

int resize_row_horizontal(const std::uint8_t* source_row, const int* column_offset, const std::int8_t* weight_high,
                          const std::int8_t* weight_low, int vector_columns, std::int16_t* blue, std::int16_t* green,
                          std::int16_t* red) {
  // Per lane, two columns' bytes B G R B' G' R' . . | B G R B' G' R' . . become
  // BB'BB' GG'GG' RR'RR' (zeros): one 32-bit group per channel.
  const __m256i to_channel_pairs = _mm256_setr_epi8(0, 3, 8, 11, 1, 4, 9, 12, 2, 5, 10, 13, -1, -1, -1, -1,  //
                                                    0, 3, 8, 11, 1, 4, 9, 12, 2, 5, 10, 13, -1, -1, -1, -1);
  int x = 0;
  for (; x + 16 <= vector_columns; x += 16) {
    const int* offset = column_offset + x;
    const __m256i columns01 = _mm256_shuffle_epi8(load_column_pairs(source_row, offset), to_channel_pairs);
    const __m256i columns23 = _mm256_shuffle_epi8(load_column_pairs(source_row, offset + 2), to_channel_pairs);
    const __m256i columns45 = _mm256_shuffle_epi8(load_column_pairs(source_row, offset + 4), to_channel_pairs);
    const __m256i columns67 = _mm256_shuffle_epi8(load_column_pairs(source_row, offset + 6), to_channel_pairs);
    const __m256i blue_green03 = _mm256_unpacklo_epi32(columns01, columns23);  // B01 B23 G01 G23
    const __m256i red03 = _mm256_unpackhi_epi32(columns01, columns23);         // R01 R23 0 0
    const __m256i blue_green47 = _mm256_unpacklo_epi32(columns45, columns67);
    const __m256i red47 = _mm256_unpackhi_epi32(columns45, columns67);
    const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(weight_high + 2 * x));
    const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(weight_low + 2 * x));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(blue + x),
                        horizontal_sum(_mm256_unpacklo_epi64(blue_green03, blue_green47), high, low));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(green + x),
                        horizontal_sum(_mm256_unpackhi_epi64(blue_green03, blue_green47), high, low));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(red + x),
                        horizontal_sum(_mm256_unpacklo_epi64(red03, red47), high, low));
  }
  return x;
}

int blend_row_f32(const std::int16_t* first, const std::int16_t* second, std::int16_t first_weight,
                  std::int16_t second_weight, int count, float gain, float offset, float* out) {
  const __m256i weight0 = _mm256_set1_epi16(first_weight);
  const __m256i weight1 = _mm256_set1_epi16(second_weight);
  const __m256i two = _mm256_set1_epi16(2);
  const __m256 gain8 = _mm256_set1_ps(gain);
  const __m256 offset8 = _mm256_set1_ps(offset);
  int x = 0;
  for (; x + 16 <= count; x += 16) {
    // (w0 * h0) >> 16 is pmulhw exactly for these non-negative operands (as in the portable code).
    const __m256i first_part =
        _mm256_mulhi_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(first + x)), weight0);
    const __m256i second_part =
        _mm256_mulhi_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(second + x)), weight1);
    const __m256i levels = _mm256_srai_epi16(_mm256_add_epi16(_mm256_add_epi16(first_part, second_part), two), 2);
    const __m256 low = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(levels)));
    const __m256 high = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(levels, 1)));
    _mm256_storeu_ps(out + x, _mm256_add_ps(_mm256_mul_ps(low, gain8), offset8));
    _mm256_storeu_ps(out + x + 8, _mm256_add_ps(_mm256_mul_ps(high, gain8), offset8));
  }
  return x;
}

}  // namespace detflow::detail::avx2
