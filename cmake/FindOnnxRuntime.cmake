# FindOnnxRuntime: ONNX Runtime's C/C++ API from an official release layout
# (ROOT/include/onnxruntime_cxx_api.h, ROOT/lib/libonnxruntime.so).
# Looked for in: -DONNXRUNTIME_ROOT, $ENV{ONNXRUNTIME_ROOT}, then the bootstrap cache
# ($DETFLOW_CACHE_DIR/onnxruntime, else $HOME/.cache/detflow/onnxruntime). Defines OnnxRuntime::OnnxRuntime, OnnxRuntime_FOUND,
# OnnxRuntime_ROOT and OnnxRuntime_VERSION.
set(_ort_hints)
if(ONNXRUNTIME_ROOT)
  list(APPEND _ort_hints "${ONNXRUNTIME_ROOT}")
endif()
if(DEFINED ENV{ONNXRUNTIME_ROOT})
  list(APPEND _ort_hints "$ENV{ONNXRUNTIME_ROOT}")
endif()
if(DEFINED ENV{DETFLOW_CACHE_DIR})
  list(APPEND _ort_hints "$ENV{DETFLOW_CACHE_DIR}/onnxruntime")
endif()
if(DEFINED ENV{HOME})
  list(APPEND _ort_hints "$ENV{HOME}/.cache/detflow/onnxruntime")
endif()

find_path(OnnxRuntime_INCLUDE_DIR onnxruntime_cxx_api.h
  HINTS ${_ort_hints} PATH_SUFFIXES include include/onnxruntime include/onnxruntime/core/session NO_DEFAULT_PATH)
find_library(OnnxRuntime_LIBRARY onnxruntime HINTS ${_ort_hints} PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)

if(OnnxRuntime_INCLUDE_DIR AND EXISTS "${OnnxRuntime_INCLUDE_DIR}/onnxruntime_c_api.h")
  file(STRINGS "${OnnxRuntime_INCLUDE_DIR}/onnxruntime_c_api.h" _ort_api REGEX "^#define ORT_API_VERSION [0-9]+")
  string(REGEX REPLACE "^#define ORT_API_VERSION ([0-9]+).*" "1.\\1" OnnxRuntime_VERSION "${_ort_api}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(OnnxRuntime REQUIRED_VARS OnnxRuntime_LIBRARY OnnxRuntime_INCLUDE_DIR
  VERSION_VAR OnnxRuntime_VERSION)

if(OnnxRuntime_FOUND AND NOT TARGET OnnxRuntime::OnnxRuntime)
  get_filename_component(OnnxRuntime_ROOT "${OnnxRuntime_INCLUDE_DIR}" DIRECTORY)
  add_library(OnnxRuntime::OnnxRuntime SHARED IMPORTED)
  set_target_properties(OnnxRuntime::OnnxRuntime PROPERTIES
    IMPORTED_LOCATION "${OnnxRuntime_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${OnnxRuntime_INCLUDE_DIR}")
endif()
mark_as_advanced(OnnxRuntime_INCLUDE_DIR OnnxRuntime_LIBRARY)
