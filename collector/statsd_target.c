/*
 * statsd_target.c - where the DogStatsD lines go: a udp:// or unixgram:// URL, or the target
 * the DataDog clients would pick from DD_DOGSTATSD_URL, DD_AGENT_HOST and DD_DOGSTATSD_PORT.
 * Only parsing here; the sink resolves and connects.
 */
#include "statsd_sink.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A host name or IPv4 address ([A-Za-z0-9._-]), or inside brackets an IPv6 address with an
 * optional zone ([0-9A-Za-z:.%_-]): never a space or anything a resolver would have to guess. */
static int
host_ok(const char *h, size_t len, int bracketed)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];
		if (!isalnum(c) && c != '.' && c != '-' && c != '_' &&
		    !(bracketed && (c == ':' || c == '%')))
			return 0;
	}
	return 1;
}

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
	if (hl == 0 || hl >= sizeof(t->host) || !host_ok(hp, hl, hp[-1] == '['))
		goto bad;
	const char *port = colon + 1;
	size_t pl = strlen(port);
	unsigned long pv = 0;
	if (pl == 0 || pl > 5)
		goto bad;
	for (size_t i = 0; i < pl; i++) {
		if (port[i] < '0' || port[i] > '9')
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
