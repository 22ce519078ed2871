# detflow_set_warnings(target): the project's warning policy for one target.
function(detflow_set_warnings target)
  # -Wshadow=local is GCC's local-only shadowing check. Clang (the fuzz preset) refuses that
  # spelling and has no equivalent (its -Wshadow also reports shadowed namespace-scope names);
  # the GCC builds enforce it.
  set(shadow_warning "")
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    set(shadow_warning -Wshadow=local)
  endif()
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic ${shadow_warning} -Wnon-virtual-dtor)
  if(DETFLOW_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
    # GCC 12 at -O3 reports impossible overlaps inside libstdc++'s own string concatenation
    # (GCC bug 105329; -Wrestrict on char_traits.h), depending on inlining, so on one
    # architecture and not another. It stays a warning there; everything else is an error.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${target} PRIVATE -Wno-error=restrict)
    endif()
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
