# Lets a target reuse the library's precompiled LibTorch headers. GCC accepts a PCH only when
# the code-model flags match, so the target is compiled with -fPIC like the shared library.
function(sbgm_reuse_pch target)
  if(SBGM_USE_PCH)
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
    target_precompile_headers(${target} REUSE_FROM sbgm)
    target_link_libraries(${target} PRIVATE sbgm_openmp)  # -fopenmp defines _REENTRANT, as for the PCH
  endif()
endfunction()
