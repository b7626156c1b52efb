/* check_main.c - the main() of every Check unit test: runs the file's suite
 * (gb_test_unit_def, see check_main.h) and exits non-zero when a test failed. */
#include <stdlib.h>

#include "check_main.h"

int
main(void)
{
	SRunner *sr;
	int failed;

	if (gb_test_unit_def.suite == NULL)
		return EXIT_FAILURE;
	sr = srunner_create(gb_test_unit_def.suite());
	if (gb_test_unit_def.before_run != NULL)
		gb_test_unit_def.before_run();
	srunner_run_all(sr, CK_NORMAL);
	if (gb_test_unit_def.after_run != NULL)
		gb_test_unit_def.after_run();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
