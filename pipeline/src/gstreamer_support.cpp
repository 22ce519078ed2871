#include "gstreamer_support.h"

#include <mutex>

#include <gst/gst.h>

#include "detflow/error.h"

namespace detflow::detail {

void initialise_gstreamer(const std::string& purpose) {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    GError* error = nullptr;
    if (!gst_init_check(nullptr, nullptr, &error)) {
      failure = error ? error->message : "unknown reason";
      if (error) g_error_free(error);
    }
  });
  if (!failure.empty()) throw Error("GStreamer cannot be initialised for " + purpose + ": " + failure);
}

}  // namespace detflow::detail
