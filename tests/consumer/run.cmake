# Builds and runs the consumer project. With MODE=find_package, skyvol is first installed into
# a scratch prefix, so the test proves the installed package (headers, config, version file).
# Arguments: SOURCE_DIR, WORK_DIR, MODE, CXX.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(consumer_args -DCMAKE_CXX_COMPILER=${CXX} -DSKYVOL_CONSUMER_MODE=${MODE})

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()

if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/skyvol -DCMAKE_INSTALL_PREFIX=${prefix}
      -DSKYVOL_BUILD_TESTS=OFF -DSKYVOL_BUILD_EXAMPLES=OFF -DSKYVOL_BUILD_TOOLS=OFF
      -DCMAKE_CXX_COMPILER=${CXX})
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/skyvol)
  foreach(f include/skyvol/skyvol.hpp share/cmake/skyvol/skyvolConfig.cmake
            share/cmake/skyvol/skyvolConfigVersion.cmake share/cmake/skyvol/skyvol_s3Targets.cmake
            share/cmake/skyvol/skyvol_fuseTargets.cmake share/pkgconfig/skyvol.pc
            share/pkgconfig/skyvol-s3.pc share/pkgconfig/skyvol-fuse.pc)
    if(NOT EXISTS "${prefix}/${f}")
      message(FATAL_ERROR "install is missing ${f}")
    endif()
  endforeach()
  list(APPEND consumer_args -DCMAKE_PREFIX_PATH=${prefix})
else()
  list(APPEND consumer_args -DSKYVOL_SOURCE_DIR=${SOURCE_DIR})
endif()

run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/consumer ${consumer_args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run(${WORK_DIR}/consumer/consumer ${WORK_DIR}/bucket)
run(${WORK_DIR}/consumer/consumer_components)
if(NOT EXISTS "${WORK_DIR}/bucket/greeting.txt")
  message(FATAL_ERROR "the consumer's object is not a file in the bucket folder")
endif()
if(MODE STREQUAL "find_package")
  # The pkg-config files must describe a working compile line too (the core's), and resolve.
  run(sh -c "PKG_CONFIG_PATH='${prefix}/share/pkgconfig' && export PKG_CONFIG_PATH && \
             ${CXX} '${SOURCE_DIR}/tests/consumer/main.cpp' -o '${WORK_DIR}/pc-consumer' \
             $(pkg-config --cflags --libs skyvol) && '${WORK_DIR}/pc-consumer' '${WORK_DIR}/pc-bucket' && \
             pkg-config --print-errors --exists skyvol-s3 skyvol-fuse")
endif()
