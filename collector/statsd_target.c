/*
 * statsd_target.c - where the DogStatsD lines go: the URL forms datadog-go accepts (udp://,
 * unix://, unixgram://, unixstream://), or the target the DataDog clients would pick from
 * DD_DOGSTATSD_URL, DD_DOGSTATSD_SOCKET, DD_AGENT_HOST and DD_DOGSTATSD_PORT. Only parsing
 * here; the sink resolves and connects.
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

static int
bad(const char *url, const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "StatsD URL \"%s\": %s", url, why);
	return -1;
}

static const struct {
	const char *scheme;
	enum gb_statsd_kind kind;
	bool guess;
} unix_schemes[] = {
	{ "unix://", GB_STATSD_UNIXGRAM, true },
	{ "unixgram://", GB_STATSD_UNIXGRAM, false },
	{ "unixstream://", GB_STATSD_UNIXSTREAM, false },
};

static int
parse_unix(const char *url, const char *path, size_t i, gb_statsd_target *t, char *err,
    size_t errlen)
{
	char why[160];

	if (path[0] != '/') {
		snprintf(why, sizeof(why), "%s needs an absolute path (%s/path/to.socket)",
		    unix_schemes[i].scheme, unix_schemes[i].scheme);
		return bad(url, why, err, errlen);
	}
	if (strlen(path) >= sizeof(t->path)) {
		snprintf(why, sizeof(why), "the socket path is longer than %zu bytes",
		    sizeof(t->path) - 1);
		return bad(url, why, err, errlen);
	}
	t->kind = unix_schemes[i].kind;
	t->guess_stream = unix_schemes[i].guess;
	memcpy(t->path, path, strlen(path) + 1);
	return 0;
}

/* The port after "host:" (pl bytes): 1-65535 in decimal. */
static int
port_ok(const char *port, size_t pl)
{
	unsigned long pv = 0;

	if (pl == 0 || pl > 5)
		return 0;
	for (size_t i = 0; i < pl; i++) {
		if (port[i] < '0' || port[i] > '9')
			return 0;
		pv = pv * 10 + (unsigned long)(port[i] - '0');
	}
	return pv >= 1 && pv <= 65535;
}

static int
parse_udp(const char *url, const char *hp, gb_statsd_target *t, char *err, size_t errlen)
{
	const char *port = NULL;
	size_t hl;
	int bracketed = hp[0] == '[';

	if (bracketed) {
		const char *close = strchr(hp, ']');

		if (close == NULL)
			return bad(url, "an IPv6 address needs its closing ']'", err, errlen);
		if (close[1] != '\0' && close[1] != ':')
			return bad(url, "only \":port\" may follow ']'", err, errlen);
		hp++;
		hl = (size_t)(close - hp);
		if (close[1] == ':')
			port = close + 2;
	} else {
		const char *colon = strchr(hp, ':');

		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return bad(url, "an IPv6 address goes in brackets (udp://[::1]:8125)", err,
			    errlen);
		hl = colon != NULL ? (size_t)(colon - hp) : strlen(hp);
		if (colon != NULL)
			port = colon + 1;
	}
	if (hl == 0)
		return bad(url, "no host (udp://host[:port])", err, errlen);
	if (hl >= sizeof(t->host) || !host_ok(hp, hl, bracketed))
		return bad(url, bracketed ? "not an IPv6 address in brackets" :
		    "the host is not a name or an address ([A-Za-z0-9._-])", err, errlen);
	if (port != NULL && !port_ok(port, strlen(port)))
		return bad(url, "the port is not a number in 1-65535", err, errlen);
	t->kind = GB_STATSD_UDP;
	memcpy(t->host, hp, hl);
	snprintf(t->port, sizeof(t->port), "%s", port != NULL ? port : GB_STATSD_DEFAULT_PORT);
	return 0;
}

int
gb__statsd_parse_url(const char *url, gb_statsd_target *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < sizeof(unix_schemes) / sizeof(unix_schemes[0]); i++) {
		size_t sl = strlen(unix_schemes[i].scheme);

		if (strncmp(url, unix_schemes[i].scheme, sl) == 0)
			return parse_unix(url, url + sl, i, t, err, errlen);
	}
	if (strncmp(url, "udp://", 6) == 0)
		return parse_udp(url, url + 6, t, err, errlen);
	return bad(url, "use udp://host[:port], unix:///path, unixgram:///path or "
	    "unixstream:///path", err, errlen);
}

/* DD_DOGSTATSD_SOCKET: the path of the agent's datagram socket, as DataDog documents it. */
static int
from_socket_var(const char *path, gb_statsd_target *t, char *err, size_t errlen)
{
	char url[sizeof(t->path) + 16], sub[256];

	if (path[0] != '/' || strlen(path) >= sizeof(t->path)) {
		snprintf(err, errlen, "DD_DOGSTATSD_SOCKET \"%.150s\": needs an absolute path "
		    "shorter than %zu bytes", path, sizeof(t->path));
		return -1;
	}
	snprintf(url, sizeof(url), "unixgram://%s", path);
	if (gb__statsd_parse_url(url, t, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "DD_DOGSTATSD_SOCKET: %s", sub);
		return -1;
	}
	return 0;
}

int
gb__statsd_target_from_env(gb_statsd_target *t, char *err, size_t errlen)
{
	const char *url = getenv("DD_DOGSTATSD_URL");
	const char *sock = getenv("DD_DOGSTATSD_SOCKET");
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
	if (sock != NULL && sock[0] != '\0')
		return from_socket_var(sock, t, err, errlen);
	if ((host == NULL || host[0] == '\0') && (port == NULL || port[0] == '\0'))
		return gb__statsd_parse_url(GB_STATSD_DEFAULT_URL, t, err, errlen);
	if (host == NULL || host[0] == '\0')
		host = "127.0.0.1";
	if (port == NULL || port[0] == '\0')
		port = GB_STATSD_DEFAULT_PORT;
	snprintf(buf, sizeof(buf), strchr(host, ':') ? "udp://[%s]:%s" : "udp://%s:%s", host, port);
	if (gb__statsd_parse_url(buf, t, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "DD_AGENT_HOST \"%.100s\" / DD_DOGSTATSD_PORT \"%.20s\" do not "
		    "make a StatsD address", host, port);
		return -1;
	}
	return 0;
}
