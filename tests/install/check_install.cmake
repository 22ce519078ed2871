# check_install.cmake — `cmake --install` as a user runs it, into a temporary prefix, then the
# installed tree checked: the command, the example configurations and the systemd unit where
# the README's "Run as a service" says, and the installed command running without the build
# tree or the build user's cache folder (ONNX Runtime installed beside it, found by $ORIGIN).
#   cmake -DBUILD_DIR=... -DPREFIX=... -DLIBDIR=lib -P check_install.cmake
foreach(variable BUILD_DIR PREFIX LIBDIR)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "check_install.cmake: ${variable} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${result}):\n${output}")
endif()
foreach(expected
    "bin/detflow"
    "etc/detflow/headless-edge.yaml"
    "etc/detflow/models/yolov8.yaml"
    "${LIBDIR}/systemd/system/detflow@.service")
  if(NOT EXISTS "${PREFIX}/${expected}")
    message(FATAL_ERROR "cmake --install did not install ${expected} (into ${PREFIX})")
  endif()
endforeach()
file(READ "${PREFIX}/${LIBDIR}/systemd/system/detflow@.service" unit)
foreach(expected "Type=notify" "Restart=on-failure" "WatchdogSec=" "ExecStart=" "/etc/detflow/%i.yaml")
  string(FIND "${unit}" "${expected}" position)
  if(position EQUAL -1)
    message(FATAL_ERROR "the installed detflow@.service lacks '${expected}':\n${unit}")
  endif()
endforeach()
# The installed command on its own: no LD_LIBRARY_PATH, HOME somewhere without a cache.
execute_process(COMMAND "${CMAKE_COMMAND}" -E env --unset=LD_LIBRARY_PATH HOME=${PREFIX}/home
                        "${PREFIX}/bin/detflow" --help
                RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the installed detflow does not run on its own (${result}):\n${output}")
endif()
string(FIND "${output}" "run" position)
if(position EQUAL -1)
  message(FATAL_ERROR "the installed detflow --help does not list its commands:\n${output}")
endif()
file(REMOVE_RECURSE "${PREFIX}")
message(STATUS "cmake --install: command, configurations and systemd unit installed; the command runs on its own")
