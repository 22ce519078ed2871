// detflow/bench/process_probe.h — what a benchmark mode costs this process (CPU time,
// resident memory) and how to run a mode in a child process of its own.
//
// Why child processes: peak resident memory (VmHWM) only ever grows within a process, and
// allocators keep freed memory, so modes run one after another in one process would be
// charged for each other. run_in_child() forks, runs the work in the child and hands its
// result (text, usually JSON) back through a pipe. The parent must not have started
// thread pools (ONNX Runtime, oneTBB, GStreamer, OpenCV's parallel_for) before forking:
// a child inherits their state but not their threads. The bench's parent process only
// parses flags and collects results; every mode decodes, loads and runs in its child.
//
// Thread-safety: the readers are safe from any thread. run_in_child() blocks until the
// child ends; call it from one thread at a time.
// Units: seconds for CPU time, KiB for memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace detflow::bench {

// user + system CPU time of every thread of this process so far (getrusage RUSAGE_SELF).
double process_cpu_seconds();
// The same quantity from CLOCK_PROCESS_CPUTIME_ID: nanosecond resolution, for timing one
// stage of one frame.
double process_cpu_clock_seconds();
// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID).
double thread_cpu_seconds();

// Current (VmRSS) and peak (VmHWM) resident set of this process in KiB; 0 when unknown.
std::int64_t resident_kb();
std::int64_t peak_resident_kb();
// Resets VmHWM to the current resident set (writes "5" to /proc/self/clear_refs). Returns
// false when the kernel refuses, in which case peak_resident_kb() keeps the process peak.
bool reset_peak_resident();

// Runs `work` in a forked child and returns what it returned. The child dies with the
// parent (PR_SET_PDEATHSIG). A detflow::Error thrown in the child is rethrown in the parent
// as detflow::Error with the same message; any other exception, or a child killed by a
// signal, as std::runtime_error naming `what`. The child's standard output is pointed at its
// standard error, so nothing a library prints in the child reaches the parent's table.
std::string run_in_child(const std::string& what, const std::function<std::string()>& work);

}  // namespace detflow::bench
