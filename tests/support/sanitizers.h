// Whether the test runs under AddressSanitizer (a DETFLOW_SANITIZE build). Its quarantine
// keeps freed memory resident and its shadow memory grows with the heap, so tests that
// measure resident memory skip those assertions there.
#pragma once

namespace detflow::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool running_under_address_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool running_under_address_sanitizer = true;
#else
inline constexpr bool running_under_address_sanitizer = false;
#endif
#else
inline constexpr bool running_under_address_sanitizer = false;
#endif

inline constexpr const char* resident_memory_skip_reason =
    "resident memory is not measurable under AddressSanitizer (quarantine and shadow memory)";

}  // namespace detflow::test
