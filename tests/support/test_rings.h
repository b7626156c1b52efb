/*
 * test_rings.h - cleanup for tests that name their rings after the test runner's pid: a test
 * that fails before its own cleanup leaves its ring behind, so the runner removes them all.
 */
#ifndef GBATCH_TESTS_TEST_RINGS_H
#define GBATCH_TESTS_TEST_RINGS_H

/* Unlinks every /dev/shm/gbatch.<prefix>* segment. */
void gb_test_remove_rings(const char *prefix);

#endif
