/*
 * check_main.h - the one main() of the Check unit tests (tests/support/check_main.c).
 * Each tests/unit/test_<module>.c defines gb_test_unit_def: its suite, and optionally work
 * the runner process does before and after the run. The runner runs the suite with
 * CK_NORMAL output; Check's own environment (CK_FORK, CK_RUN_SUITE, CK_RUN_CASE,
 * CK_DEFAULT_TIMEOUT, CK_TIMEOUT_MULTIPLIER) applies as usual. Timeouts and fixtures belong
 * to the suite (tcase_set_timeout, tcase_add_checked_fixture).
 */
#ifndef GBATCH_TESTS_CHECK_MAIN_H
#define GBATCH_TESTS_CHECK_MAIN_H

#include <check.h>

typedef struct gb_test_unit {
	Suite *(*suite)(void);   /* required: builds the module's suite */
	void (*before_run)(void); /* optional: in the runner process, before the first test */
	void (*after_run)(void);  /* optional: in the runner process, after the last test */
} gb_test_unit;

/* Defined by each unit test file. */
extern const gb_test_unit gb_test_unit_def;

#endif
