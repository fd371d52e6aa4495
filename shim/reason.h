/*
 * reason: the fixed codes that say why a connection ended or failed, or
 * what a warning is about.  One list for the log (the `reason` field of
 * JSON lines, the code in text ones) and for the counters (stats.c), so a
 * pipeline can match on a code that never changes with the wording of the
 * message.  New codes go at the end of their group; names are never
 * reused for something else.  docs/reasons.md lists them for operators.
 */
#ifndef SOCKSEAL_REASON_H
#define SOCKSEAL_REASON_H

enum reason {
	REASON_NONE = 0,
	/* How a connection ended without failing. */
	REASON_CLOSED,                  /* the program closed it */
	REASON_CLOSED_UNREAD,           /* ... with data unread: a reset */
	REASON_EXITED,                  /* the process exited */
	REASON_EXITED_UNREAD,
	REASON_UNSEEN_CLOSE,            /* closed behind the shim's back */
	REASON_PLAINTEXT_PERMISSIVE,    /* a plain client, mode=permissive */
	REASON_CLOSED_IN_HANDSHAKE,     /* closed before it was sealed */
	/* Refused before any byte was sent. */
	REASON_HANDSHAKE_LIMIT,         /* SOCKSEAL_MAX_HANDSHAKES */
	REASON_NO_DESCRIPTOR,           /* none left for the sealed socket */
	/* The handshake. */
	REASON_HANDSHAKE_TIMEOUT,
	REASON_PEER_CLOSED,             /* the peer closed during it */
	REASON_NO_PREFACE,              /* plaintext or foreign client */
	REASON_BAD_VERSION,             /* another wire protocol version */
	REASON_BAD_PREFACE,
	REASON_SUITE_REFUSED,           /* not accepted or unavailable */
	REASON_BAD_HANDSHAKE,           /* a message of the wrong length */
	REASON_WRONG_KEY,               /* a message failed authentication */
	REASON_PEER_NOT_ALLOWED,        /* an identity peers= does not list */
	REASON_WRONG_PEER_KEY,          /* the responder's is not peer='s */
	REASON_NOT_SOCKSEAL,            /* the server answered something else */
	REASON_LOCAL_ERROR,             /* this side could not go on */
	/* The sealed stream. */
	REASON_BAD_RECORD,              /* a record length out of range */
	REASON_RECORD_AUTH,             /* tampered, replayed or reordered */
	REASON_TRUNCATED,               /* ended without the end mark */
	REASON_PEER_RESET,              /* ECONNRESET, EPIPE from the kernel */
	REASON_IO_ERROR,                /* another error from the kernel */
	REASON_REVOKED,                 /* a reload removed the peer */
	REASON_PROCESS_DIED,            /* a process died holding its lock */
	REASON_HANDOFF,                 /* exec, SCM_RIGHTS: not carried on */
	/* Warnings that are not about one connection's end. */
	REASON_UNSUPPORTED,             /* a call the shim cannot seal */
	REASON_RELOAD_FAILED,
	REASON_KEY_EXPOSED,             /* a key file others may read */
	REASON_BAD_SETTING,             /* an environment setting ignored */
	REASON_NO_MEMORY,
	REASON_EPOLL,                   /* a registration not translated */
	REASON_COUNT
};

/* The code's name ("wrong_key"); "none" for one out of range. */
const char *reason_name(int r);

/* Is R a failure (a connection refused or failed), not an end? */
int reason_is_failure(int r);

#endif
