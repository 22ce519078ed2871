# detflow_set_warnings(target): the project's warning policy for one target.
function(detflow_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor)
  if(DETFLOW_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(DETFLOW_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
    # GCC's flow analysis sees the sanitizers' instrumentation and reports uninitialised
    # values that are not (for example inside libstdc++'s std::regex, GCC 12).
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    endif()
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/sanitizers/defaults.cpp)
      target_compile_definitions(${target}
        PRIVATE DETFLOW_UBSAN_SUPPRESSIONS="${PROJECT_SOURCE_DIR}/cmake/sanitizers/ubsan.supp")
    endif()
  endif()
endfunction()
