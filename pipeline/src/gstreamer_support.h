// gstreamer_support.h — what the GStreamer-based sources and sinks share. Internal to
// detflow_pipeline.
#pragma once

#include <string>

namespace detflow::detail {

// gst_init once per process (thread-safe). Throws detflow::Error naming `purpose` (e.g.
// "the video output") when GStreamer cannot be initialised, e.g. an unreadable registry.
void initialise_gstreamer(const std::string& purpose);

}  // namespace detflow::detail
