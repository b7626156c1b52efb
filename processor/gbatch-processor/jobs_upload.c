/*
 * jobs_upload.c - a job's content, as --jobs gives it to the workflow: read into memory and
 * sent inline, or, above the inline limit (or with --upload), uploaded to the Files API once
 * per distinct content of the run and named by its URI. A content file to upload is read as it
 * is sent, never whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "content_file.h"
#include "content_upload.h"
#include "gb_limits.h"
#include "jobs_internal.h"

/* Uploads src (keyed by key) and points the slot's content at the file. */
static int
use_upload(struct runner *rn, struct slot *s, const gb_files_source *src, uint64_t key,
    char *err, size_t errlen)
{
	char why[768];
	const gb_gemini_file *f = gb__uploads_get(&rn->uploads, rn->client, rn->tele, src, key,
	    why, sizeof(why));

	if (f == NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	s->content.data = NULL;
	s->content.len = 0;
	s->content.file_uri = f->uri;
	return 0;
}

/* A content_file: read when it is sent inline, else streamed to the Files API. */
static int
content_from_file(struct runner *rn, struct slot *s, char *err, size_t errlen)
{
	const char *path = s->job->content_file, *base = strrchr(path, '/');
	char why[PATH_MAX + 128];
	uint64_t size, key;
	size_t len;
	int fd, rc;

	if ((fd = gb__open_content_file(path, rn->o->content_root, &size, why, sizeof(why))) < 0) {
		snprintf(err, errlen, "cannot read content file \"%.200s\": %.280s", path, why);
		return -1;
	}
	s->content.mime_type = gb__mime_for(path);
	if (size > GB__FILES_MAX_BYTES) {
		snprintf(err, errlen, "content file \"%.200s\" is %" PRIu64 " bytes, more than the "
		    "Files API takes (2 GiB, %llu bytes)", path, size, GB__FILES_MAX_BYTES);
		rc = -1;
	} else if (rn->o->upload || size > GB_MAX_INLINE_BYTES) {
		gb_files_source src = { fd, NULL, size, s->content.mime_type,
			base != NULL ? base + 1 : path };
		if ((rc = gb__content_key_fd(fd, src.mime_type, size, &key)) != 0)
			snprintf(err, errlen, "cannot read content file \"%.200s\": %s", path,
			    strerror(errno));
		else
			rc = use_upload(rn, s, &src, key, err, errlen);
	} else if ((s->data = gb__read_fd(fd, GB_MAX_INLINE_BYTES, &len)) == NULL) {
		snprintf(err, errlen, "cannot read content file \"%.200s\": %s", path,
		    errno == EFBIG ? "it grew while being read" : strerror(errno));
		rc = -1;
	} else {
		s->content.data = s->data;
		s->content.len = len;
		rc = 0;
	}
	close(fd);
	return rc;
}

int
gb__jobs_content(struct runner *rn, struct slot *s, char *err, size_t errlen)
{
	const struct job *j = s->job;

	if (j->content_file != NULL)
		return content_from_file(rn, s, err, errlen);
	s->content.data = j->content;
	s->content.len = j->content_len;
	if (rn->o->upload || j->content_len > GB_MAX_INLINE_BYTES) {
		gb_files_source src = { -1, j->content, j->content_len, NULL, "gbatch content" };
		return use_upload(rn, s, &src, gb__content_key(NULL, j->content, j->content_len), err,
		    errlen);
	}
	return 0;
}
