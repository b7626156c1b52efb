/*
 * test_rings.c - removes the shared-memory rings a test run created (see test_rings.h).
 */
#include "test_rings.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
gb_test_remove_rings(const char *prefix)
{
	char full[128], path[512];
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (d == NULL)
		return;
	snprintf(full, sizeof(full), "gbatch.%s", prefix);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, full, strlen(full)) == 0) {
			snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
			unlink(path);
		}
	}
	closedir(d);
}
