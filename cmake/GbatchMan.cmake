# Man pages, generated at build time from each program's --help and --version by help2man
# (through help2man-input.sh), with the hand-written sections of NAME.h2m beside the program's
# source (EXIT STATUS, ENVIRONMENT, SEE ALSO...). Off with -DGBATCH_MAN=OFF.
if(GBATCH_MAN)
  find_program(GBATCH_HELP2MAN help2man)
  if(NOT GBATCH_HELP2MAN)
    message(FATAL_ERROR "GBATCH_MAN needs help2man: install it with 'apt-get install help2man' "
      "(deploy/install-deps.sh does) or configure with -DGBATCH_MAN=OFF")
  endif()
endif()

# gbatch_man_page(<program target> "<one-line description>") builds <program>.1 from the
# target and ${CMAKE_CURRENT_SOURCE_DIR}/<program>.h2m and installs it in man1.
function(gbatch_man_page target description)
  if(NOT GBATCH_MAN)
    return()
  endif()
  set(include ${CMAKE_CURRENT_SOURCE_DIR}/${target}.h2m)
  set(page ${CMAKE_CURRENT_BINARY_DIR}/${target}.1)
  add_custom_command(OUTPUT ${page}
    COMMAND ${GBATCH_HELP2MAN} --no-info --no-discard-stderr --section=1 --source=gbatch
      --name=${description} --include=${include} --output=${page}
      "${PROJECT_SOURCE_DIR}/cmake/help2man-input.sh $<TARGET_FILE:${target}>"
    DEPENDS ${target} ${include} ${PROJECT_SOURCE_DIR}/cmake/help2man-input.sh
    COMMENT "Generating the man page ${target}.1"
    VERBATIM)
  add_custom_target(${target}-man ALL DEPENDS ${page})
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endfunction()
