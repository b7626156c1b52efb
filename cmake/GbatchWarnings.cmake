# Warning flags and sanitizers, applied to every gbatch target.
add_compile_options(
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wpointer-arith -Wcast-qual -Wformat=2)
if(GBATCH_WERROR)
  add_compile_options(-Werror)
endif()

if(GBATCH_SANITIZE)
  if(GBATCH_SANITIZE STREQUAL "address,undefined" OR GBATCH_SANITIZE STREQUAL "undefined,address")
    set(_gb_san -fsanitize=address,undefined -fno-sanitize-recover=all)
  elseif(GBATCH_SANITIZE STREQUAL "thread")
    set(_gb_san -fsanitize=thread)
  else()
    message(FATAL_ERROR "GBATCH_SANITIZE must be 'address,undefined' or 'thread', not '${GBATCH_SANITIZE}'")
  endif()
  add_compile_options(${_gb_san} -fno-omit-frame-pointer)
  add_link_options(${_gb_san})
endif()
