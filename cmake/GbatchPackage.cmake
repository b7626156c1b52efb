# The installed CMake package: find_package(gbatch) gives gbatch::gbatch (libgbatch.so) and
# gbatch::gbatch_static (libgbatch.a), exported by processor/libgbatch/CMakeLists.txt.
include(CMakePackageConfigHelpers)
set(GBATCH_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/gbatch)
install(EXPORT gbatchTargets NAMESPACE gbatch:: FILE gbatchTargets.cmake
  DESTINATION ${GBATCH_CMAKE_DIR})
configure_package_config_file(cmake/gbatchConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/gbatchConfig.cmake INSTALL_DESTINATION ${GBATCH_CMAKE_DIR})
# 0.x: a new minor version may change the API, so only the same minor version satisfies.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/gbatchConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gbatchConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/gbatchConfigVersion.cmake DESTINATION ${GBATCH_CMAKE_DIR})
