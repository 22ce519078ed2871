// loopback.h — a free port on 127.0.0.1 for the test servers (RTSP, HTTP, UDP, Mosquitto).
// Thread-safety: free function, safe from any thread.
#pragma once

namespace detflow::test {

// A TCP (or, with udp, UDP) port on 127.0.0.1 that was free a moment ago: bound to port 0, read
// back and closed. Another process may take it before the caller binds it; tests accept that
// small race. Throws std::runtime_error when no socket can be bound.
int free_loopback_port(bool udp = false);

}  // namespace detflow::test
