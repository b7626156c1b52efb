/*
 * batch_state.c - the batch state file: one JSON object, replaced atomically (a synced
 * temporary file renamed over it, the directory synced), read back with every field checked:
 * it is a file, and files are edited, cut short or replaced by something else.
 */
#include "batch_state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/string.h>

#include "fdio.h"

#define MAX_STATE (256u << 20)

int
gb__batch_state_path(const char *output, char *path, size_t len)
{
	int n = snprintf(path, len, "%s.batch.json", output);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

void
gb__batch_state_fini(struct gb_batch_state *st)
{
	json_decref(st->jobs);
	json_decref(st->files);
	json_decref(st->caches);
	memset(st, 0, sizeof(*st));
}

/* Copies string member key of o (required unless optional) into out. */
static int
take(const json_t *o, const char *key, char *out, size_t outlen, int optional)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL && optional)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= outlen ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* Member key of o as an array of strings (a new reference, an empty array when absent). */
static json_t *
take_names(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key), *e;
	size_t i;

	if (v == NULL)
		return json_array();
	if (!json_is_array(v))
		return NULL;
	json_array_foreach(v, i, e)
		if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) > 512)
			return NULL;
	return json_incref(v);
}

/* Reads the whole of a regular file (never a FIFO or a device) of at most MAX_STATE bytes. */
static json_t *
read_state(const char *path, int *none, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	json_error_t jerr;
	struct stat st;
	json_t *v;
	FILE *f;

	*none = 0;
	if (fd < 0) {
		*none = errno == ENOENT;
		snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_STATE ||
	    (f = fdopen(fd, "r")) == NULL) {
		snprintf(err, errlen, "\"%s\" is not a regular file of at most %u MiB", path,
		    MAX_STATE >> 20);
		close(fd);
		return NULL;
	}
	v = json_loadf(f, 0, &jerr);
	fclose(f);
	if (v == NULL)
		snprintf(err, errlen, "\"%s\" is not JSON (%s, line %d)", path, jerr.text, jerr.line);
	return v;
}

int
gb__batch_state_load(const char *path, struct gb_batch_state *st, char *err, size_t errlen)
{
	int none;
	json_t *v = read_state(path, &none, err, errlen);
	const json_t *ver = json_object_get(v, "version"), *sub = json_object_get(v, "submitted");

	memset(st, 0, sizeof(*st));
	if (v == NULL)
		return none ? 0 : -1;
	if (!json_is_integer(ver) || json_integer_value(ver) != GB__BATCH_STATE_VERSION ||
	    take(v, "name", st->name, sizeof(st->name), 1) != 0 ||
	    take(v, "display_name", st->display_name, sizeof(st->display_name), 0) != 0 ||
	    take(v, "model", st->model, sizeof(st->model), 0) != 0 ||
	    take(v, "input_file", st->input_file, sizeof(st->input_file), 1) != 0 ||
	    !json_is_integer(sub) || json_integer_value(sub) < 0 ||
	    (st->jobs = take_names(v, "jobs")) == NULL || (st->files = take_names(v, "files")) ==
	    NULL || (st->caches = take_names(v, "caches")) == NULL || st->display_name[0] == '\0') {
		snprintf(err, errlen, "\"%s\" is not a batch state file of version %d (a field is "
		    "missing or of the wrong shape)", path, GB__BATCH_STATE_VERSION);
		json_decref(v);
		gb__batch_state_fini(st);
		return -1;
	}
	st->submitted = (time_t)json_integer_value(sub);
	json_decref(v);
	return 1;
}

/* fsync of the directory holding path, so a rename or an unlink in it lasts. */
static int
sync_dir(const char *path)
{
	char copy[PATH_MAX];
	int fd, rc;

	if (strlcpy(copy, path, sizeof(copy)) >= sizeof(copy))
		return -1;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
gb__batch_state_save(const char *path, const struct gb_batch_state *st, char *err,
    size_t errlen)
{
	char tmp[PATH_MAX], *text;
	json_t *v = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:O, s:O, s:O}", "version",
	    GB__BATCH_STATE_VERSION, "name", st->name, "display_name", st->display_name, "model",
	    st->model, "input_file", st->input_file, "submitted", (json_int_t)st->submitted,
	    "jobs", st->jobs, "files", st->files, "caches", st->caches);
	int fd, ok, saved_errno;

	if (v == NULL || (text = json_dumps(v, JSON_INDENT(1))) == NULL) {
		json_decref(v);
		snprintf(err, errlen, "out of memory writing \"%s\"", path);
		return -1;
	}
	json_decref(v);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		free(text);
		snprintf(err, errlen, "cannot write \"%s\": the path is too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	ok = fd >= 0 && gb__write_all(fd, text, strlen(text)) == 0 &&
	    gb__write_all(fd, "\n", 1) == 0 && fsync(fd) == 0;
	saved_errno = errno;
	if (fd >= 0 && close(fd) != 0 && ok) {
		ok = 0;
		saved_errno = errno;
	}
	if (ok && (rename(tmp, path) != 0 || sync_dir(path) != 0)) {
		ok = 0;
		saved_errno = errno;
	}
	free(text);
	if (!ok) {
		unlink(tmp);
		snprintf(err, errlen, "cannot write \"%s\": %s", path, strerror(saved_errno));
		return -1;
	}
	return 0;
}

int
gb__batch_state_remove(const char *path, char *err, size_t errlen)
{
	if ((unlink(path) != 0 && errno != ENOENT) || sync_dir(path) != 0) {
		snprintf(err, errlen, "cannot remove \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
