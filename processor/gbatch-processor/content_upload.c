/*
 * content_upload.c - gbatch-processor's use of the Files API: which content is uploaded (above
 * the inline limit, or all of it with --upload), one upload per distinct content of a run,
 * and the run's files deleted at the end (a failure there is only a warning).
 */
#include "content_upload.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "content_file.h"
#include "gb_limits.h"
#include "hash.h"
#include "log.h"

uint64_t
gb__content_key(const char *mime, const void *data, size_t len)
{
	const char *m = mime != NULL ? mime : "text";
	uint64_t h = gb__hash_more(GB_HASH_SEED, m, strlen(m));

	return gb__hash_more(h, data, len);
}

int
gb__content_key_fd(int fd, const char *mime, uint64_t len, uint64_t *key)
{
	uint64_t h = gb__content_key(mime, "", 0), off = 0;
	char *buf = malloc(1 << 16);
	ssize_t n;

	if (buf == NULL)
		return -1;
	while (off < len) {
		size_t want = len - off < (1 << 16) ? (size_t)(len - off) : (1 << 16);
		if ((n = pread(fd, buf, want, (off_t)off)) < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			free(buf);
			return -1;
		}
		h = gb__hash_more(h, buf, (size_t)n);
		off += (uint64_t)n;
	}
	free(buf);
	*key = h;
	return 0;
}

const gb_gemini_file *
gb__uploads_get(struct gb_uploads *u, gb_gemini *c, gb_tele *t, const gb_files_source *src,
    uint64_t key, char *err, size_t errlen)
{
	gb_gemini_result res = { 0 };
	struct gb_upload *up, **nv;

	for (size_t i = 0; i < u->n; i++) {
		if (u->v[i]->key != key)
			continue;
		if (u->v[i]->error != NULL) {
			snprintf(err, errlen, "%s", u->v[i]->error);
			return NULL;
		}
		return &u->v[i]->file;
	}
	if ((nv = realloc(u->v, (u->n + 1) * sizeof(*nv))) == NULL ||
	    (nv[u->n] = calloc(1, sizeof(**nv))) == NULL) {
		if (nv != NULL)
			u->v = nv;
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->v = nv;
	up = u->v[u->n++];
	up->key = key;
	if (gb__files_upload(c, t, src, &up->file, &res) == GB__GEMINI_OK) {
		gb__log_info("uploaded %s (%" PRIu64 " bytes, %s), %s", up->file.name, src->len,
		    up->file.mime_type[0] != '\0' ? up->file.mime_type : "no type", up->file.state);
		gb__files_wait_active(c, t, &up->file, NULL, &res);
	}
	if (res.status != GB__GEMINI_OK) {
		snprintf(err, errlen, "%s%s", up->file.name[0] == '\0' ? "the upload failed: " : "",
		    res.message);
		up->error = strdup(err);
	}
	gb__gemini_result_fini(&res);
	return up->error == NULL ? &up->file : NULL;
}

void
gb__uploads_finish(struct gb_uploads *u, gb_gemini *c, bool keep)
{
	for (size_t i = 0; i < u->n; i++) {
		struct gb_upload *up = u->v[i];
		gb_gemini_result res = { 0 };
		if (up->file.name[0] == '\0') {
			/* never created */
		} else if (keep) {
			gb__log_info("kept %s (--keep-files; the API deletes it after 48 hours)",
			    up->file.name);
		} else if (gb__files_delete(c, up->file.name, &res) != GB__GEMINI_OK) {
			gb__log_warnx("cannot delete %s (%s); the API deletes it after 48 hours",
			    up->file.name, res.message);
			u->delete_failures++;
		} else {
			u->deleted++;
		}
		gb__gemini_result_fini(&res);
		free(up->error);
		free(up);
	}
	free(u->v);
	u->v = NULL;
	u->n = 0;
}

/* ---- the one-content run's files ---- */

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		gb__fatalx("out of memory");
	return p;
}

void
gb__content_set_load(struct gb_content_set *cs, char *const *paths, size_t n, const char *root,
    bool upload)
{
	size_t inline_bytes = 0, len;
	char why[PATH_MAX + 128];
	int fd;

	cs->n = n;
	cs->paths = paths;
	cs->content = xcalloc(n, sizeof(*cs->content));
	cs->bufs = xcalloc(n, sizeof(*cs->bufs));
	cs->fds = xcalloc(n, sizeof(*cs->fds));
	cs->sizes = xcalloc(n, sizeof(*cs->sizes));
	for (size_t i = 0; i < n; i++) {
		cs->fds[i] = -1;
		if ((fd = gb__open_content_file(paths[i], root, &cs->sizes[i], why, sizeof(why))) < 0)
			gb__usage_error("cannot read content file \"%.200s\": %.600s", paths[i], why);
		cs->content[i].mime_type = gb__mime_for(paths[i]);
		if (cs->sizes[i] > GB__FILES_MAX_BYTES)
			gb__usage_error("content file \"%.200s\" is %" PRIu64 " bytes, more than the "
			    "Files API takes (2 GiB, %llu bytes)", paths[i], cs->sizes[i],
			    GB__FILES_MAX_BYTES);
		if (upload || cs->sizes[i] > GB_MAX_INLINE_BYTES - inline_bytes) {
			cs->fds[i] = fd;
			continue;
		}
		cs->bufs[i] = gb__read_fd(fd, GB_MAX_INLINE_BYTES - inline_bytes, &len);
		if (cs->bufs[i] == NULL)
			gb__usage_error("cannot read content file \"%.200s\": %s", paths[i],
			    errno == EFBIG ? "it grew while being read" : strerror(errno));
		close(fd);
		cs->content[i].data = cs->bufs[i];
		cs->content[i].len = len;
		inline_bytes += len;
	}
}

int
gb__content_set_upload(struct gb_content_set *cs, struct gb_uploads *u, gb_gemini *c,
    gb_tele *t, char *err, size_t errlen)
{
	char why[768];

	for (size_t i = 0; i < cs->n; i++) {
		const char *base = strrchr(cs->paths[i], '/');
		gb_files_source src = { cs->fds[i], NULL, cs->sizes[i], cs->content[i].mime_type,
			base != NULL ? base + 1 : cs->paths[i] };
		const gb_gemini_file *f;
		uint64_t key;
		if (cs->fds[i] < 0)
			continue;
		if (gb__content_key_fd(cs->fds[i], src.mime_type, src.len, &key) != 0) {
			snprintf(err, errlen, "cannot read content file \"%.200s\": %s", cs->paths[i],
			    strerror(errno));
			return -1;
		}
		if ((f = gb__uploads_get(u, c, t, &src, key, why, sizeof(why))) == NULL) {
			snprintf(err, errlen, "content file \"%.200s\": %s", cs->paths[i], why);
			return -1;
		}
		cs->content[i].file_uri = f->uri;
	}
	return 0;
}

void
gb__content_set_fini(struct gb_content_set *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->bufs[i]);
		if (cs->fds[i] >= 0)
			close(cs->fds[i]);
	}
	free(cs->bufs);
	free(cs->fds);
	free(cs->sizes);
	free(cs->content);
	memset(cs, 0, sizeof(*cs));
}
