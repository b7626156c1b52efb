/*
 * result_report.h - how gbatch-processor shows the result of one question set: the JSON on
 * stdout, or written to --output with the answers listed on stdout.
 */
#ifndef GBATCH_PROCESSOR_RESULT_REPORT_H
#define GBATCH_PROCESSOR_RESULT_REPORT_H

#include <gbatch/processor.h>

/* Prints r's JSON (terminal-safe) on stdout or, with output, writes it there (synced) and
 * prints the answers; logs what is missing or partial. Returns the exit status it makes: 0,
 * 1 when an answer is missing or the result could not be written (to output or stdout), or
 * GB__EXIT_PARTIAL when every answer is there but some are partial. */
int gb__result_report(const gb_result *r, const char *output);

#endif
