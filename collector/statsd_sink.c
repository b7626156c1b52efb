/*
 * statsd_sink.c - DogStatsD formatting, sanitising, packing and sending. Every byte of a name,
 * key or value comes from another process, so each is mapped through a whitelist before it is
 * written, and every write into the line is bounded by the datagram limit. Sending never
 * blocks: the socket is non-blocking, full datagrams leave in batches through sendmmsg, and a
 * failed datagram is counted and forgotten.
 */
#include "statsd_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "aggregate.h"
#include "clock.h"
#include "hash.h"

#define RECONNECT_NS (500ull * GB_NS_PER_MS)
#define GB_STATSD_QUEUE 16 /* full datagrams sent together by one sendmmsg */

/* Records from one call site repeat the same scope and metadata: the sanitised name and tags
 * of the last record seen per slot are kept, keyed by the raw bytes they were made from, so a
 * hit skips sanitising, the cardinality cap and the tag budget. Direct-mapped and bounded. */
#define CACHE_SLOTS 1024
#define CACHE_KEY_MAX 256
#define CACHE_TEXT_MAX 512

struct line_cache {
	uint64_t hash;
	uint16_t key_len, name_len, tags_len;
	uint16_t tags_dropped, values_capped; /* what making this entry cost, counted per hit */
	char key[CACHE_KEY_MAX];
	char text[CACHE_TEXT_MAX];            /* the name, then the tags */
};
#define MAX_DROP_TAGS 32

struct gb_statsd_sink {
	gb_statsd_target target;
	bool has_target;
	int fd;
	uint64_t next_connect_ns;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	gb_statsd_send_fn send;
	void *send_ctx;
	size_t max;
	uint64_t send_timeout_ns;
	bool congested; /* a wait for room ran out; no more waits until a send succeeds */

	char prefix[GB_STATSD_PREFIX_MAX + 1];
	size_t prefix_len;
	char global[GB_STATSD_GLOBAL_TAGS_MAX];
	size_t global_len;
	char drop[MAX_DROP_TAGS][GB_STATSD_TAG_MAX + 1];
	size_t drop_len[MAX_DROP_TAGS];
	size_t n_drop;

	gb_agg *agg;
	gb_taglim *lim;
	gb_statsd_stats st;
	uint64_t capped_on_hits; /* values the cap replaced, counted again on cache hits */
	struct line_cache *cache; /* CACHE_SLOTS entries */

	size_t plen;                 /* bytes in pkt[nq], the datagram being filled */
	size_t nq;                   /* full datagrams waiting in pkt[0, nq) */
	size_t qlen[GB_STATSD_QUEUE];
	char pkt[GB_STATSD_QUEUE][GB_STATSD_UNIX_MAX];
	char line[GB_STATSD_UNIX_MAX];
};

/* ---- sanitising ---- */

static bool
is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static bool
is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_letter(unsigned char c)
{
	return is_lower(c) || is_upper(c);
}

size_t
gb__statsd_name(char *out, const char *prefix, size_t prefix_len, const char *scope,
    size_t scope_len)
{
	size_t n = prefix_len, start = prefix_len;
	bool need_letter = prefix_len == 0;
	char last = '.';

	memcpy(out, prefix, prefix_len);
	for (size_t i = 0; i < scope_len && n < GB_STATSD_NAME_MAX; i++) {
		unsigned char c = (unsigned char)scope[i];
		char w;

		if (is_letter(c))
			w = (char)c;
		else if (need_letter)
			continue;
		else if (is_digit(c) || c == '_')
			w = (char)c;
		else if (c == '.')
			w = '.';
		else
			w = '~'; /* a replaced byte: '_', one per run */
		if (w == '.' && last == '.')
			continue;
		if (w == '~') {
			if (last == '~')
				continue;
			out[n++] = '_';
		} else {
			out[n++] = w;
		}
		last = w;
		need_letter = false;
	}
	while (n > start && out[n - 1] == '.')
		n--;
	if (n == start) {
		static const char unnamed[] = "unnamed";
		size_t room = GB_STATSD_NAME_MAX - n;
		size_t k = sizeof(unnamed) - 1 < room ? sizeof(unnamed) - 1 : room;

		memcpy(out + n, unnamed, k);
		n += k;
	}
	return n;
}

int
gb__statsd_prefix_check(const char *prefix, char *err, size_t errlen)
{
	size_t len = strlen(prefix);
	char buf[GB_STATSD_NAME_MAX + 1];

	if (len == 0)
		return 0;
	if (len > GB_STATSD_PREFIX_MAX) {
		snprintf(err, errlen, "prefix \"%.40s...\" is longer than %d bytes", prefix,
		    GB_STATSD_PREFIX_MAX);
		return -1;
	}
	/* a valid prefix is one that sanitising leaves alone (bar its final dot) */
	size_t body = prefix[len - 1] == '.' ? len - 1 : len;
	if (body == 0 || gb__statsd_name(buf, "", 0, prefix, body) != body ||
	    memcmp(buf, prefix, body) != 0) {
		snprintf(err, errlen,
		    "prefix \"%s\" is not a metric name (letter first, then [A-Za-z0-9_.], "
		    "no empty segment, optionally ending in '.')", prefix);
		return -1;
	}
	return 0;
}

/* Maps one tag byte: the allowed byte, lowered, or 0 when it must be replaced. */
static char
tag_byte(unsigned char c, bool in_key)
{
	if (is_upper(c))
		return (char)(c - 'A' + 'a');
	if (is_lower(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '/')
		return (char)c;
	if (c == ':' && !in_key)
		return ':';
	return 0;
}

/* Appends the sanitised bytes of s to out[*n, limit), a run of replaced bytes as one '_'. */
static void
tag_part(char *out, size_t *n, size_t limit, const char *s, size_t len, bool in_key)
{
	bool replaced = false;

	for (size_t i = 0; i < len && *n < limit; i++) {
		unsigned char c = (unsigned char)s[i];
		char w = tag_byte(c, in_key);

		if (in_key && *n == 0 && !is_letter(c))
			continue;
		if (w == 0) {
			if (replaced)
				continue;
			w = '_';
			replaced = true;
		} else {
			replaced = false;
		}
		out[(*n)++] = w;
	}
}

size_t
gb__statsd_tag(char *out, const char *key, size_t key_len, const char *value,
    size_t value_len, size_t *key_len_out)
{
	size_t n = 0, k;

	tag_part(out, &n, GB_STATSD_TAG_MAX, key, key_len, true);
	if (n == 0)
		return 0;
	if (n == 4 && memcmp(out, "host", 4) == 0) {
		memcpy(out, "user_host", 9);
		n = 9;
	}
	k = n;
	if (value != NULL && n + 1 < GB_STATSD_TAG_MAX) {
		out[n++] = ':';
		tag_part(out, &n, GB_STATSD_TAG_MAX, value, value_len, false);
		while (n > k && out[n - 1] == ':')
			n--;
	}
	if (key_len_out != NULL)
		*key_len_out = k;
	return n;
}

static size_t
put_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

size_t
gb__statsd_value(char *out, double v)
{
	double a = fabs(v);
	size_t n = 0;

	if (a == 0) {
		out[0] = '0';
		return 1;
	}
	if (a < 1e-4 || a >= 1e15) {
		int k = snprintf(out, GB_STATSD_VALUE_MAX, "%.15g", v);
		return k > 0 ? (size_t)k : 0;
	}
	if (v < 0)
		out[n++] = '-';
	uint64_t ip = (uint64_t)a;
	uint64_t frac = (uint64_t)((a - (double)ip) * 1e9 + 0.5);
	if (frac >= 1000000000u) {
		ip++;
		frac -= 1000000000u;
	}
	n += put_u64(out + n, ip);
	if (frac != 0) {
		int digits = 9;

		while (frac % 10 == 0) {
			frac /= 10;
			digits--;
		}
		out[n++] = '.';
		for (int i = digits - 1; i >= 0; i--) {
			out[n + (size_t)i] = (char)('0' + frac % 10);
			frac /= 10;
		}
		n += (size_t)digits;
	}
	return n;
}

/* ---- the target ---- */

int
gb__statsd_parse_url(const char *url, gb_statsd_target *t, char *err, size_t errlen)
{
	const char *hp, *colon;
	size_t hl;

	memset(t, 0, sizeof(*t));
	if (strncmp(url, "unixgram://", 11) == 0) {
		const char *path = url + 11;

		if (path[0] != '/' || strlen(path) >= sizeof(t->path)) {
			snprintf(err, errlen, "StatsD URL \"%s\": unixgram:// needs an absolute path "
			    "shorter than %zu bytes", url, sizeof(t->path));
			return -1;
		}
		t->kind = GB_STATSD_UNIXGRAM;
		memcpy(t->path, path, strlen(path) + 1);
		return 0;
	}
	if (strncmp(url, "udp://", 6) != 0) {
		snprintf(err, errlen, "StatsD URL \"%s\": use udp://host:port or unixgram:///path", url);
		return -1;
	}
	hp = url + 6;
	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');

		if (close == NULL || close[1] != ':')
			goto bad;
		hp++;
		hl = (size_t)(close - hp);
		colon = close + 1;
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL || memchr(hp, ':', (size_t)(colon - hp)) != NULL)
			goto bad;
		hl = (size_t)(colon - hp);
	}
	if (hl == 0 || hl >= sizeof(t->host) || memchr(hp, '/', hl) != NULL)
		goto bad;
	const char *port = colon + 1;
	size_t pl = strlen(port);
	unsigned long pv = 0;
	if (pl == 0 || pl > 5)
		goto bad;
	for (size_t i = 0; i < pl; i++) {
		if (!is_digit((unsigned char)port[i]))
			goto bad;
		pv = pv * 10 + (unsigned long)(port[i] - '0');
	}
	if (pv == 0 || pv > 65535)
		goto bad;
	t->kind = GB_STATSD_UDP;
	memcpy(t->host, hp, hl);
	memcpy(t->port, port, pl + 1);
	return 0;
bad:
	snprintf(err, errlen, "StatsD URL \"%s\": expected udp://host:port with a port in "
	    "1-65535 (IPv6 as udp://[addr]:port)", url);
	return -1;
}

int
gb__statsd_target_from_env(gb_statsd_target *t, char *err, size_t errlen)
{
	const char *url = getenv("DD_DOGSTATSD_URL");
	const char *host = getenv("DD_AGENT_HOST");
	const char *port = getenv("DD_DOGSTATSD_PORT");
	char sub[256], buf[320];

	if (url != NULL && url[0] != '\0') {
		if (gb__statsd_parse_url(url, t, sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "DD_DOGSTATSD_URL: %s", sub);
			return -1;
		}
		return 0;
	}
	if ((host == NULL || host[0] == '\0') && (port == NULL || port[0] == '\0'))
		return gb__statsd_parse_url(GB_STATSD_DEFAULT_URL, t, err, errlen);
	if (host == NULL || host[0] == '\0')
		host = "127.0.0.1";
	if (port == NULL || port[0] == '\0')
		port = "8125";
	snprintf(buf, sizeof(buf), strchr(host, ':') ? "udp://[%s]:%s" : "udp://%s:%s", host, port);
	if (gb__statsd_parse_url(buf, t, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "DD_AGENT_HOST \"%.100s\" / DD_DOGSTATSD_PORT \"%.20s\" do not "
		    "make a StatsD address", host, port);
		return -1;
	}
	return 0;
}

static void
close_socket(gb_statsd_sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Opens and connects the socket; on failure leaves fd -1 and retries after RECONNECT_NS. */
static void
connect_socket(gb_statsd_sink *s)
{
	int fd;

	s->next_connect_ns = gb__clock_mono_ns() + RECONNECT_NS;
	fd = socket(s->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)&s->addr, s->addrlen) < 0) {
		close(fd);
		return;
	}
	if (s->target.kind == GB_STATSD_UNIXGRAM) {
		int sz = GB_STATSD_UNIX_MAX * 32;

		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	s->fd = fd;
}

static int
resolve(gb_statsd_sink *s, char *err, size_t errlen)
{
	if (s->target.kind == GB_STATSD_UNIXGRAM) {
		struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;

		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, s->target.path, strlen(s->target.path) + 1);
		s->addrlen = sizeof(*un);
		return 0;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	int rc = getaddrinfo(s->target.host, s->target.port, &hints, &ai);

	if (rc != 0) {
		snprintf(err, errlen, "StatsD host \"%s\": %s", s->target.host, gai_strerror(rc));
		return -1;
	}
	memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
	s->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* ---- the sink ---- */

/* Bytes a line may give to its tags: the datagram minus name, value, type and separators. */
static size_t
tag_room(const gb_statsd_sink *s, size_t name_len)
{
	return s->max - (name_len + 1 + GB_STATSD_VALUE_MAX + 3 + 2 + 1);
}


static void
add_global(gb_statsd_sink *s, const char *tag, size_t len)
{
	if (s->global_len > 0)
		s->global[s->global_len++] = ',';
	memcpy(s->global + s->global_len, tag, len);
	s->global_len += len;
}

static int
set_globals(gb_statsd_sink *s, const gb_statsd_config *cfg, char *err, size_t errlen)
{
	char tag[GB_STATSD_TAG_MAX + 1];

	for (size_t i = 0; i < cfg->n_tags; i++) {
		const char *t = cfg->tags[i], *colon = strchr(t, ':');
		size_t n = colon ? gb__statsd_tag(tag, t, (size_t)(colon - t), colon + 1,
		    strlen(colon + 1), NULL) : gb__statsd_tag(tag, t, strlen(t), NULL, 0, NULL);

		if (n == 0)
			continue;
		if (s->global_len + 1 + n > GB_STATSD_GLOBAL_TAGS_MAX) {
			snprintf(err, errlen, "global tags are longer than %d bytes at \"%.60s\"",
			    GB_STATSD_GLOBAL_TAGS_MAX, t);
			return -1;
		}
		add_global(s, tag, n);
	}
	if (cfg->n_drop_tags > MAX_DROP_TAGS) {
		snprintf(err, errlen, "at most %d tags can be dropped", MAX_DROP_TAGS);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_drop_tags; i++) {
		const char *k = cfg->drop_tags[i];

		s->drop_len[s->n_drop] = gb__statsd_tag(s->drop[s->n_drop], k, strlen(k), NULL, 0,
		    NULL);
		if (s->drop_len[s->n_drop] > 0)
			s->n_drop++;
	}
	return 0;
}

gb_statsd_sink *
gb__statsd_new(const gb_statsd_config *cfg, char *err, size_t errlen)
{
	gb_statsd_sink *s = calloc(1, sizeof(*s));
	const char *prefix = cfg->prefix ? cfg->prefix : GB_STATSD_DEFAULT_PREFIX;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->fd = -1;
	if (gb__statsd_prefix_check(prefix, err, errlen) < 0)
		goto fail;
	s->prefix_len = strlen(prefix);
	memcpy(s->prefix, prefix, s->prefix_len);
	if (set_globals(s, cfg, err, errlen) < 0)
		goto fail;
	s->agg = gb__agg_new();
	s->lim = gb__taglim_new(cfg->max_tag_values);
	s->cache = calloc(CACHE_SLOTS, sizeof(*s->cache));
	if (s->agg == NULL || s->lim == NULL || s->cache == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (cfg->target != NULL) {
		s->has_target = true;
		s->target = *cfg->target;
		s->max = s->target.kind == GB_STATSD_UNIXGRAM ? GB_STATSD_UNIX_MAX : GB_STATSD_UDP_MAX;
		s->send_timeout_ns = cfg->send_timeout_ns;
		if (resolve(s, err, errlen) < 0)
			goto fail;
		connect_socket(s);
	} else {
		s->send = cfg->send;
		s->send_ctx = cfg->send_ctx;
		s->max = cfg->max_datagram;
	}
	if (cfg->max_datagram != 0 && cfg->max_datagram < s->max)
		s->max = cfg->max_datagram;
	if (s->send_timeout_ns > GB_STATSD_MAX_SEND_TIMEOUT_NS) {
		snprintf(err, errlen, "send timeout %llu ms is over the limit of %llu ms",
		    (unsigned long long)(s->send_timeout_ns / GB_NS_PER_MS),
		    (unsigned long long)(GB_STATSD_MAX_SEND_TIMEOUT_NS / GB_NS_PER_MS));
		goto fail;
	}
	if (s->max < 512 || s->max > GB_STATSD_UNIX_MAX || (s->send == NULL && !s->has_target)) {
		snprintf(err, errlen, "datagram size %zu not in [512, %d], or nowhere to send", s->max,
		    GB_STATSD_UNIX_MAX);
		goto fail;
	}
	if (tag_room(s, GB_STATSD_NAME_MAX) < s->global_len + 1 + 2 * GB_STATSD_TAG_MAX) {
		snprintf(err, errlen, "global tags (%zu bytes) leave too little room in a %zu-byte "
		    "datagram", s->global_len, s->max);
		goto fail;
	}
	return s;
fail:
	gb__statsd_free(s);
	return NULL;
}

void
gb__statsd_free(gb_statsd_sink *s)
{
	if (s == NULL)
		return;
	gb__statsd_flush(s);
	close_socket(s);
	gb__agg_free(s->agg);
	gb__taglim_free(s->lim);
	free(s->cache);
	free(s);
}

/* A unixgram peer that went away (agent restarted) needs a new connect; for UDP an error is
 * transient (ICMP port unreachable, full buffers) and the socket stays. */
static void
send_failed(gb_statsd_sink *s, int err)
{
	s->st.send_errors++;
	if (s->target.kind == GB_STATSD_UNIXGRAM && err != EAGAIN && err != EWOULDBLOCK &&
	    err != ENOBUFS) {
		close_socket(s);
		s->next_connect_ns = 0;
	}
}

/* A unixgram target whose queue is full (the agent reads more slowly than we send) makes the
 * send fail with EAGAIN. Records stay in the ring until they are sent, so waiting here is
 * backpressure into the ring rather than loss: waits for room until *deadline (set on the
 * first wait for this datagram), unless the target is congested. Returns true when the send
 * is worth trying again; false marks the target congested. */
static bool
wait_for_room(gb_statsd_sink *s, uint64_t *deadline)
{
	uint64_t now = gb__clock_mono_ns();

	if (s->congested || s->send_timeout_ns == 0)
		return false;
	if (*deadline == 0)
		*deadline = now + s->send_timeout_ns;
	while (now < *deadline) {
		struct pollfd p = { .fd = s->fd, .events = POLLOUT };
		int rc = poll(&p, 1, (int)((*deadline - now + GB_NS_PER_MS - 1) / GB_NS_PER_MS));

		if (rc > 0)
			return true; /* room, or an error the next send reports */
		if (rc < 0 && errno != EINTR)
			break;
		now = gb__clock_mono_ns();
	}
	s->congested = true;
	return false;
}

/* Sends the queued datagrams with as few sendmmsg calls as the errors allow. */
static void
socket_send_queue(gb_statsd_sink *s)
{
	struct mmsghdr m[GB_STATSD_QUEUE];
	struct iovec iov[GB_STATSD_QUEUE];
	bool retried = false;
	uint64_t deadline = 0; /* of the wait for room for datagram i */
	size_t i = 0;

	for (size_t k = 0; k < s->nq; k++) {
		iov[k] = (struct iovec){ .iov_base = s->pkt[k], .iov_len = s->qlen[k] };
		m[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k], .msg_iovlen = 1 } };
	}
	while (i < s->nq) {
		int n;

		if (s->fd < 0 && gb__clock_mono_ns() >= s->next_connect_ns)
			connect_socket(s);
		if (s->fd < 0) {
			s->st.send_errors += s->nq - i;
			return;
		}
		n = sendmmsg(s->fd, m + i, (unsigned)(s->nq - i), MSG_NOSIGNAL);
		if (n <= 0) { /* the datagram at i failed: count it, go on with the next */
			int e = errno;

			if (s->target.kind == GB_STATSD_UNIXGRAM && (e == EAGAIN || e == EWOULDBLOCK) &&
			    wait_for_room(s, &deadline))
				continue;
			send_failed(s, e);
			/* UDP reports the port unreachable of an earlier datagram on a later send,
			 * which it does not send: the target may be back, so try that one again */
			if (e == ECONNREFUSED && s->target.kind == GB_STATSD_UDP && !retried) {
				retried = true;
				continue;
			}
			retried = false;
			deadline = 0;
			i++;
			continue;
		}
		retried = false;
		s->congested = false;
		deadline = 0;
		for (size_t k = i; k < i + (size_t)n; k++) {
			s->st.packets_sent++;
			s->st.bytes_sent += s->qlen[k];
		}
		i += (size_t)n;
	}
}

static void
send_queue(gb_statsd_sink *s)
{
	if (s->has_target) {
		socket_send_queue(s);
	} else {
		for (size_t k = 0; k < s->nq; k++) {
			if (s->send(s->send_ctx, s->pkt[k], s->qlen[k]) == 0) {
				s->st.packets_sent++;
				s->st.bytes_sent += s->qlen[k];
			} else {
				s->st.send_errors++;
			}
		}
	}
	s->nq = 0;
}

void
gb__statsd_flush(gb_statsd_sink *s)
{
	if (s->plen > 0) {
		s->qlen[s->nq++] = s->plen;
		s->plen = 0;
	}
	if (s->nq > 0)
		send_queue(s);
}

/* Appends a line to the current datagram; a full datagram is queued, a full queue sent. */
static void
pack(gb_statsd_sink *s, const char *line, size_t len)
{
	if (s->plen + len > s->max) {
		s->qlen[s->nq++] = s->plen;
		s->plen = 0;
		if (s->nq == GB_STATSD_QUEUE)
			send_queue(s);
	}
	memcpy(s->pkt[s->nq] + s->plen, line, len);
	s->plen += len;
	s->st.lines++;
}

static bool
dropped_key(const gb_statsd_sink *s, const char *key, size_t len)
{
	for (size_t i = 0; i < s->n_drop; i++)
		if (s->drop_len[i] == len && memcmp(s->drop[i], key, len) == 0)
			return true;
	return false;
}

/* Appends ",tag" (or "tag" first) into out[*n, limit) if it fits; counts it when it does not. */
static void
put_tag(gb_statsd_sink *s, char *out, size_t *n, size_t limit, const char *tag, size_t len)
{
	size_t need = len + (*n > 0);

	if (*n + need > limit) {
		s->st.tags_dropped++;
		return;
	}
	if (*n > 0)
		out[(*n)++] = ',';
	memcpy(out + *n, tag, len);
	*n += len;
}

/* Writes the tags of r (no "|#") into out, within limit bytes, the global tags included. */
static size_t
record_tags(gb_statsd_sink *s, const gb_record *r, char *out, size_t limit)
{
	char tag[GB_STATSD_TAG_MAX + 1];
	size_t n = 0, len, kl;
	size_t room = limit - (s->global_len ? s->global_len + 1 : 0);

	if (!dropped_key(s, "depth", 5)) {
		memcpy(tag, "depth:", 6);
		len = 6 + put_u64(tag + 6, r->depth);
		put_tag(s, out, &n, room, tag, len);
	}
	if (r->parent_len > 0 && !dropped_key(s, "parent_scope", 12)) {
		len = gb__statsd_tag(tag, "parent_scope", 12, r->scope, r->parent_len, NULL);
		put_tag(s, out, &n, room, tag, len);
	}
	for (size_t i = 0; i < r->n_meta; i++) {
		const gb_rec_kv *kv = &r->meta[i];

		len = gb__statsd_tag(tag, kv->key, kv->key_len, kv->value, kv->value_len, &kl);
		if (len == 0 || dropped_key(s, tag, kl))
			continue;
		if (len > kl && !gb__taglim_admit(s->lim, tag, kl, tag + kl + 1, len - kl - 1)) {
			static const char other[] = ":other";

			len = kl;
			if (kl + sizeof(other) - 1 <= GB_STATSD_TAG_MAX) {
				memcpy(tag + kl, other, sizeof(other) - 1);
				len += sizeof(other) - 1;
			}
		}
		put_tag(s, out, &n, room, tag, len);
	}
	if (s->global_len > 0) {
		if (n > 0)
			out[n++] = ',';
		memcpy(out + n, s->global, s->global_len);
		n += s->global_len;
	}
	return n;
}

/* Builds "name:value|type[|#tags]\n" into s->line and packs it. */
static void
emit_line(gb_statsd_sink *s, const char *name, size_t nl, double v, const char *type,
    const char *tags, size_t tl)
{
	char *p = s->line;
	size_t n = 0, ty = strlen(type);

	memcpy(p, name, nl);
	n = nl;
	p[n++] = ':';
	n += gb__statsd_value(p + n, v);
	p[n++] = '|';
	memcpy(p + n, type, ty);
	n += ty;
	if (tl > 0) {
		p[n++] = '|';
		p[n++] = '#';
		memcpy(p + n, tags, tl);
		n += tl;
	}
	p[n++] = '\n';
	pack(s, p, n);
}

static size_t
put_key(char *key, size_t n, const void *p, size_t len)
{
	if (n + len > CACHE_KEY_MAX)
		return CACHE_KEY_MAX + 1;
	memcpy(key + n, p, len);
	return n + len;
}

/* The bytes a record's name and tags are made from: depth, parent length and every string
 * with its length. Returns the length, or more than CACHE_KEY_MAX when it does not fit. */
static size_t
cache_key(const gb_record *r, char *key)
{
	uint16_t hdr[4] = { r->depth, (uint16_t)r->parent_len, (uint16_t)r->n_meta,
		(uint16_t)r->scope_len };
	size_t n;

	if (r->scope_len > CACHE_KEY_MAX || r->parent_len > CACHE_KEY_MAX)
		return CACHE_KEY_MAX + 1;
	n = put_key(key, 0, hdr, sizeof(hdr));
	n = put_key(key, n, r->scope, r->scope_len);
	for (size_t i = 0; i < r->n_meta && n <= CACHE_KEY_MAX; i++) {
		uint16_t l[2] = { (uint16_t)r->meta[i].key_len, (uint16_t)r->meta[i].value_len };

		if (r->meta[i].key_len > CACHE_KEY_MAX || r->meta[i].value_len > CACHE_KEY_MAX)
			return CACHE_KEY_MAX + 1;
		n = put_key(key, n, l, sizeof(l));
		n = put_key(key, n, r->meta[i].key, r->meta[i].key_len);
		n = put_key(key, n, r->meta[i].value, r->meta[i].value_len);
	}
	return n;
}

/* The slow path: sanitises r's name into name and its tags (cap and budget applied) into tags. */
static void
make_line_parts(gb_statsd_sink *s, const gb_record *r, char *name, size_t *nl, char *tags,
    size_t *tl)
{
	*nl = gb__statsd_name(name, s->prefix, s->prefix_len, r->scope, r->scope_len);
	*tl = record_tags(s, r, tags, tag_room(s, *nl));
}

void
gb__statsd_record(gb_statsd_sink *s, const gb_record *r)
{
	char name[GB_STATSD_NAME_MAX + 1];
	char tags[GB_STATSD_UNIX_MAX];
	char key[CACHE_KEY_MAX];
	const char *np = name, *tp = tags;
	size_t nl, tl, kl;
	double v = r->value;

	if (!isfinite(v) || (r->kind == GB_REC_TIMING && v < 0)) {
		s->st.values_rejected++;
		return;
	}
	kl = cache_key(r, key);
	if (kl <= CACHE_KEY_MAX) {
		uint64_t h = gb__hash(key, kl);
		struct line_cache *e = &s->cache[h & (CACHE_SLOTS - 1)];

		if (e->key_len == kl && e->hash == h && memcmp(e->key, key, kl) == 0) {
			np = e->text;
			nl = e->name_len;
			tp = e->text + nl;
			tl = e->tags_len;
			s->st.tags_dropped += e->tags_dropped;
			s->capped_on_hits += e->values_capped;
		} else {
			uint64_t dropped = s->st.tags_dropped, capped = gb__taglim_capped(s->lim);

			make_line_parts(s, r, name, &nl, tags, &tl);
			if (nl + tl <= CACHE_TEXT_MAX) {
				*e = (struct line_cache){ .hash = h, .key_len = (uint16_t)kl,
					.name_len = (uint16_t)nl, .tags_len = (uint16_t)tl,
					.tags_dropped = (uint16_t)(s->st.tags_dropped - dropped),
					.values_capped = (uint16_t)(gb__taglim_capped(s->lim) - capped) };
				memcpy(e->key, key, kl);
				memcpy(e->text, name, nl);
				memcpy(e->text + nl, tags, tl);
			}
		}
	} else {
		make_line_parts(s, r, name, &nl, tags, &tl);
	}
	switch (r->kind) {
	case GB_REC_TIMING:
		v *= 1000.0;
		if (!isfinite(v)) {
			s->st.values_rejected++;
			return;
		}
		emit_line(s, np, nl, v, "ms", tp, tl);
		break;
	case GB_REC_COUNTER:
		if (gb__agg_add(s->agg, np, nl, tp, tl, GB_AGG_COUNTER, v) < 0)
			s->st.fold_errors++;
		break;
	default:
		if (gb__agg_add(s->agg, np, nl, tp, tl, GB_AGG_GAUGE, v) < 0)
			s->st.fold_errors++;
		break;
	}
}

static void
emit_folded(void *ctx, const char *name, size_t name_len, const char *tags, size_t tags_len,
    enum gb_agg_type type, double v)
{
	gb_statsd_sink *s = ctx;

	if (!isfinite(v)) { /* a sum of finite values can still overflow */
		s->st.values_rejected++;
		return;
	}
	emit_line(s, name, name_len, v, type == GB_AGG_COUNTER ? "c" : "g", tags, tags_len);
}

void
gb__statsd_flush_aggregates(gb_statsd_sink *s)
{
	gb__agg_flush(s->agg, emit_folded, s);
	gb__statsd_flush(s);
}

void
gb__statsd_metric(gb_statsd_sink *s, const char *name, double v, char type, const char *tag)
{
	char tags[GB_STATSD_TAG_MAX + 1 + GB_STATSD_GLOBAL_TAGS_MAX];
	char ty[2] = { type, '\0' };
	size_t tl = 0, nl;

	if (!isfinite(v)) {
		s->st.values_rejected++;
		return;
	}
	if (tag != NULL) {
		tl = strlen(tag);
		if (tl > GB_STATSD_TAG_MAX)
			tl = GB_STATSD_TAG_MAX;
		memcpy(tags, tag, tl);
	}
	if (s->global_len > 0) {
		if (tl > 0)
			tags[tl++] = ',';
		memcpy(tags + tl, s->global, s->global_len);
		tl += s->global_len;
	}
	nl = strnlen(name, GB_STATSD_NAME_MAX);
	if (tl > tag_room(s, nl)) {
		s->st.tags_dropped++;
		tl = 0;
	}
	emit_line(s, name, nl, v, ty, tags, tl);
}

void
gb__statsd_get_stats(const gb_statsd_sink *s, gb_statsd_stats *out)
{
	*out = s->st;
	out->tag_values_capped = gb__taglim_capped(s->lim) + s->capped_on_hits;
}
