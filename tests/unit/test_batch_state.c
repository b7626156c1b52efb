/* test_batch_state.c - OUTPUT.batch.json: what is saved is read back the same; a state file
 * cut short, of another version, with a field of the wrong shape, or that is not a regular
 * file is refused with a reason; a missing one is "none"; saving replaces it whole. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch_state.h"
#include "check_main.h"

static char dir[64], path[128];

static void
setup(void)
{
	strcpy(dir, "/tmp/gbatch-state-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(gb__batch_state_path(dir, path, sizeof(path)), 0);
	/* "DIR.batch.json" is beside DIR: put it inside instead */
	snprintf(path, sizeof(path), "%s/out.jsonl.batch.json", dir);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static struct gb_batch_state
sample(void)
{
	struct gb_batch_state st = { 0 };

	strcpy(st.name, "batches/abc");
	strcpy(st.display_name, "gbatch-jobs-1-2");
	strcpy(st.model, "gemini-2.0-flash");
	strcpy(st.input_file, "files/in-1");
	st.submitted = 1752233788;
	st.jobs = json_pack("[s, s, s]", "\"a\"", "17", "\"b\\\"c\"");
	st.files = json_pack("[s]", "files/content-1");
	st.caches = json_array();
	return st;
}

START_TEST(what_is_saved_is_read_back)
{
	struct gb_batch_state st = sample(), back;
	char err[256];

	ck_assert_int_eq(gb__batch_state_save(path, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(gb__batch_state_load(path, &back, err, sizeof(err)), 1);
	ck_assert_str_eq(back.name, "batches/abc");
	ck_assert_str_eq(back.display_name, "gbatch-jobs-1-2");
	ck_assert_str_eq(back.model, "gemini-2.0-flash");
	ck_assert_str_eq(back.input_file, "files/in-1");
	ck_assert_int_eq((long long)back.submitted, 1752233788LL);
	ck_assert(json_equal(back.jobs, st.jobs));
	ck_assert(json_equal(back.files, st.files));
	ck_assert_int_eq(json_array_size(back.caches), 0);
	/* no temporary file is left beside it */
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ck_assert_int_ne(access(tmp, F_OK), 0);
	gb__batch_state_fini(&back);
	gb__batch_state_fini(&st);
	ck_assert_ptr_null(st.jobs);
}
END_TEST

START_TEST(a_missing_file_is_none_and_remove_is_idempotent)
{
	struct gb_batch_state st;
	char err[256];

	ck_assert_int_eq(gb__batch_state_load(path, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(gb__batch_state_remove(path, err, sizeof(err)), 0);
	st = sample();
	ck_assert_int_eq(gb__batch_state_save(path, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(gb__batch_state_remove(path, err, sizeof(err)), 0);
	ck_assert_int_ne(access(path, F_OK), 0);
	gb__batch_state_fini(&st);
}
END_TEST

START_TEST(state_files_of_the_wrong_shape_are_refused)
{
	static const char *const bad[] = {
		"",
		"{\"version\": 1, \"name\": \"batches/a\"",
		"[]",
		"{\"version\": 2, \"display_name\": \"d\", \"model\": \"m\", \"submitted\": 1}",
		"{\"version\": 1, \"model\": \"m\", \"submitted\": 1}",
		"{\"version\": 1, \"display_name\": \"\", \"model\": \"m\", \"submitted\": 1}",
		"{\"version\": 1, \"display_name\": \"d\", \"model\": \"m\", \"submitted\": -5}",
		"{\"version\": 1, \"display_name\": \"d\", \"model\": \"m\", \"submitted\": 1, "
		    "\"jobs\": [1]}",
		"{\"version\": 1, \"display_name\": \"d\", \"model\": \"m\", \"submitted\": 1, "
		    "\"files\": \"files/a\"}",
		"{\"version\": 1, \"display_name\": \"d\\u0000x\", \"model\": \"m\", \"submitted\": 1}",
		"{\"version\": 1, \"name\": 3, \"display_name\": \"d\", \"model\": \"m\", "
		    "\"submitted\": 1}",
	};
	struct gb_batch_state st;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(bad[i]);
		err[0] = '\0';
		ck_assert_msg(gb__batch_state_load(path, &st, err, sizeof(err)) == -1, "taken: %s",
		    bad[i]);
		ck_assert_ptr_nonnull(strstr(err, path));
		ck_assert_ptr_null(st.jobs);
	}
	write_file("{\"version\": 1, \"display_name\": \"d\", \"model\": \"m\", \"submitted\": 1}");
	ck_assert_int_eq(gb__batch_state_load(path, &st, err, sizeof(err)), 1);
	ck_assert_str_eq(st.name, "");
	ck_assert_int_eq(json_array_size(st.jobs), 0);
	gb__batch_state_fini(&st);
}
END_TEST

START_TEST(a_fifo_or_a_directory_is_not_read)
{
	struct gb_batch_state st;
	char err[256];

	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(gb__batch_state_load(path, &st, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "regular file"));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(gb__batch_state_load(path, &st, err, sizeof(err)), -1);
	ck_assert_int_eq(rmdir(path), 0);
}
END_TEST

START_TEST(saving_into_a_missing_directory_fails_with_a_reason)
{
	struct gb_batch_state st = sample();
	char err[256];

	snprintf(path, sizeof(path), "%s/no/such/out.batch.json", dir);
	ck_assert_int_eq(gb__batch_state_save(path, &st, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	gb__batch_state_fini(&st);
}
END_TEST

static Suite *
batch_state_suite(void)
{
	Suite *s = suite_create("batch_state");
	TCase *tc = tcase_create("file");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, what_is_saved_is_read_back);
	tcase_add_test(tc, a_missing_file_is_none_and_remove_is_idempotent);
	tcase_add_test(tc, state_files_of_the_wrong_shape_are_refused);
	tcase_add_test(tc, a_fifo_or_a_directory_is_not_read);
	tcase_add_test(tc, saving_into_a_missing_directory_fails_with_a_reason);
	suite_add_tcase(s, tc);
	return s;
}

const gb_test_unit gb_test_unit_def = { .suite = batch_state_suite };
