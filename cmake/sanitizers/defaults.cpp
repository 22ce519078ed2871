// Linked into every executable of a DETFLOW_SANITIZE build (see DetflowWarnings.cmake): the
// sanitizers' defaults, so that ctest, the tests and `detflow` itself need no environment
// variables. Settings given in ASAN_OPTIONS/LSAN_OPTIONS/UBSAN_OPTIONS still win.
extern "C" {

// Leaks that are not detflow's: process-lifetime allocations inside libraries that never free
// them (found with fast_unwind_on_malloc=0, which shows the whole allocating stack).
const char* __lsan_default_suppressions() {
  return "leak:libonnxruntime.so\n"  // ONNX Runtime's once-initialised tables, logger and thread pools
         "leak:libglib-2.0.so\n";    // GLib's type system, allocated when the library is loaded
}

// Undefined behaviour stops the process (a failing test), with the stack.
const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1:suppressions=" DETFLOW_UBSAN_SUPPRESSIONS;
}
}
