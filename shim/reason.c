/*
 * reason: see reason.h.  The names are snake_case ASCII: they go into JSON
 * and Prometheus labels as they are.
 */
#include <stddef.h>

#include "reason.h"

static const char *const reason_names[REASON_COUNT] = {
	[REASON_NONE]                 = "none",
	[REASON_CLOSED]               = "closed",
	[REASON_CLOSED_UNREAD]        = "closed_unread",
	[REASON_EXITED]               = "exited",
	[REASON_EXITED_UNREAD]        = "exited_unread",
	[REASON_UNSEEN_CLOSE]         = "unseen_close",
	[REASON_PLAINTEXT_PERMISSIVE] = "plaintext_permissive",
	[REASON_CLOSED_IN_HANDSHAKE]  = "closed_in_handshake",
	[REASON_HANDSHAKE_LIMIT]      = "handshake_limit",
	[REASON_NO_DESCRIPTOR]        = "no_descriptor",
	[REASON_HANDSHAKE_TIMEOUT]    = "handshake_timeout",
	[REASON_PEER_CLOSED]          = "peer_closed",
	[REASON_NO_PREFACE]           = "no_preface",
	[REASON_BAD_VERSION]          = "bad_version",
	[REASON_BAD_PREFACE]          = "bad_preface",
	[REASON_SUITE_REFUSED]        = "suite_refused",
	[REASON_BAD_HANDSHAKE]        = "bad_handshake",
	[REASON_WRONG_KEY]            = "wrong_key",
	[REASON_PEER_NOT_ALLOWED]     = "peer_not_allowed",
	[REASON_WRONG_PEER_KEY]       = "wrong_peer_key",
	[REASON_NOT_SOCKSEAL]         = "not_sockseal",
	[REASON_LOCAL_ERROR]          = "local_error",
	[REASON_BAD_RECORD]           = "bad_record",
	[REASON_RECORD_AUTH]          = "record_auth",
	[REASON_TRUNCATED]            = "truncated",
	[REASON_PEER_RESET]           = "peer_reset",
	[REASON_IO_ERROR]             = "io_error",
	[REASON_REVOKED]              = "revoked",
	[REASON_PROCESS_DIED]         = "process_died",
	[REASON_HANDOFF]              = "handoff",
	[REASON_UNSUPPORTED]          = "unsupported",
	[REASON_RELOAD_FAILED]        = "reload_failed",
	[REASON_KEY_EXPOSED]          = "key_exposed",
	[REASON_BAD_SETTING]          = "bad_setting",
	[REASON_NO_MEMORY]            = "no_memory",
	[REASON_EPOLL]                = "epoll",
};

const char *
reason_name(int r)
{
	if (r < 0 || r >= REASON_COUNT || reason_names[r] == NULL)
		return "none";
	return reason_names[r];
}

int
reason_is_failure(int r)
{
	return r >= REASON_HANDSHAKE_LIMIT && r < REASON_UNSUPPORTED;
}
