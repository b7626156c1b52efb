# Finds gbatch's dependencies with pkg-config. A missing one stops the configure
# step with the Debian package that provides it, so the fix is one apt-get away.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install it with 'apt-get install pkg-config'")
endif()

# gbatch_require(<prefix> <pkg-config module> <debian package>)
function(gbatch_require prefix module debpkg)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR
      "gbatch needs ${module} (pkg-config module '${module}' not found): "
      "install it with 'apt-get install ${debpkg}'")
  endif()
endfunction()

gbatch_require(CURL        libcurl       libcurl4-openssl-dev)
gbatch_require(JANSSON     jansson       libjansson-dev)
gbatch_require(LIBBSD      libbsd        libbsd-dev)
if(GBATCH_BUILD_TESTS)
  gbatch_require(CHECK     check         check)
endif()
gbatch_require(MHD         libmicrohttpd libmicrohttpd-dev)

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
