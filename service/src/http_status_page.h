// The status page served at "/": one self-contained HTML document (inline CSS and JS).
#pragma once

#include <string>

namespace detflow::service {

// The page polls /status.json every second and /snapshot.jpg whenever the previous image has
// loaded (rather than holding an MJPEG stream, so an open tab never takes one of the capped
// stream slots); a ?token=... in the page's address is passed on to both.
const std::string& status_page_html();

}  // namespace detflow::service
