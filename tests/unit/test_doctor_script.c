/*
 * test_doctor_script: what doctor reads from a script's text: the #!
 * interpreter (env, -S, options and assignments), shell wrappers' exec
 * targets (quotes, $0's directory, env, redirections, assignments,
 * variables, several targets), version managers' shims, and what is not
 * a wrapper.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "doctor_script.h"

static struct doctor_script s;

static int
parse(const char *path, const char *text)
{
	return doctor_script_parse(path, text, strlen(text), &s);
}

#define CHECK_STR(a, b) do { \
	if (strcmp((a), (b)) == 0) check_pass++; \
	else { check_fail++; fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", \
	    __FILE__, __LINE__, (a), (b)); } \
} while (0)

static void
test_shebang(void)
{
	CHECK_INT_EQ(parse("/x", "just text\n"), -ENOEXEC);
	CHECK_INT_EQ(parse("/x", "#!\n"), -ENOEXEC);
	CHECK_INT_EQ(parse("/x", "#!/bin/sh\necho hi\n"), 0);
	CHECK_STR(s.interp, "/bin/sh");
	CHECK_STR(s.env_name, "");
	CHECK(s.shell);
	CHECK_INT_EQ(s.nexec, 0);
	CHECK_INT_EQ(parse("/x", "#! /usr/bin/python3 -u"), 0);
	CHECK_STR(s.interp, "/usr/bin/python3");
	CHECK(!s.shell);
	CHECK_INT_EQ(parse("/x", "#!/usr/bin/env -S python3 -u\n"), 0);
	CHECK_STR(s.interp, "/usr/bin/env");
	CHECK_STR(s.env_name, "python3");
	CHECK_INT_EQ(parse("/x", "#!/usr/bin/env -i -u HOME A=1 bash\n"), 0);
	CHECK_STR(s.env_name, "bash");
	CHECK(s.shell);
	CHECK_INT_EQ(parse("/x", "#!/usr/bin/env -Sperl -w\n"), 0);
	CHECK_STR(s.env_name, "perl");
	/* a python script's `exec' lines are python */
	CHECK_INT_EQ(parse("/x", "#!/usr/bin/python3\nexec /bin/true\n"), 0);
	CHECK_INT_EQ(s.nexec, 0);
}

static void
test_wrappers(void)
{
	CHECK_INT_EQ(parse("/d/w", "#!/bin/sh\nexec /usr/bin/socat \"$@\"\n"),
	    0);
	CHECK_INT_EQ(s.nexec, 1);
	CHECK_STR(s.exec[0], "/usr/bin/socat");
	parse("/d/w", "#!/bin/sh\n  exec \"/opt/my app/bin/real\" \"$@\"\n");
	CHECK_STR(s.exec[0], "/opt/my app/bin/real");
	parse("/d/w", "#!/bin/sh\nexec \"$(dirname \"$0\")/real\" \"$@\"\n");
	CHECK_STR(s.exec[0], "/d/real");
	parse("/d/w", "#!/bin/sh\nexec ${0%/*}/real\n");
	CHECK_STR(s.exec[0], "/d/real");
	parse("w", "#!/bin/sh\nexec $(dirname $0)/real\n");
	CHECK_STR(s.exec[0], "./real");
	parse("/d/w", "#!/bin/bash\nexec >/dev/null 2>&1\n"
	    "FOO=1 exec -a name env -i BAR=2 -u X redis-server --port 0\n");
	CHECK_INT_EQ(s.nexec, 1);
	CHECK_STR(s.exec[0], "redis-server");
	parse("/d/w", "#!/bin/sh\nexec 2> /dev/null /bin/prog; echo no\n");
	CHECK_STR(s.exec[0], "/bin/prog");
	parse("/d/w", "#!/bin/sh\nexec \\/bin/esc\n");
	CHECK_STR(s.exec[0], "/bin/esc");
	/* a variable stays in the word: the caller cannot follow it */
	parse("/d/w", "#!/bin/sh\nexec \"$JAVA_HOME/bin/java\" \"$@\"\n");
	CHECK_STR(s.exec[0], "$JAVA_HOME/bin/java");
	/* several targets, the same one twice */
	parse("/d/w", "#!/bin/sh\nif [ -x /a ]; then\n  exec /a\nfi\n"
	    "exec /b\nexec /a\n");
	CHECK_INT_EQ(s.nexec, 2);
	CHECK_STR(s.exec[1], "/b");
	/* not wrappers: no exec, exec inside a command list, a comment */
	parse("/d/w", "#!/bin/sh\n/usr/bin/socat \"$@\"\n"
	    "true && exec /x\n# exec /y\necho exec /z\n");
	CHECK_INT_EQ(s.nexec, 0);
}

static void
test_managers(void)
{
	parse("/root/.pyenv/shims/python3", "#!/usr/bin/env bash\nset -e\n"
	    "[ -n \"$PYENV_DEBUG\" ] && set -x\n\nprogram=\"${0##*/}\"\n\n"
	    "export PYENV_ROOT=\"/root/.pyenv\"\n"
	    "exec \"/root/.pyenv/libexec/pyenv\" exec \"$program\" \"$@\"\n");
	CHECK(s.shell);
	CHECK_STR(s.manager, "/root/.pyenv/libexec/pyenv");
	CHECK_STR(s.manager_name, "pyenv");
	CHECK_STR(s.program, "python3");
	CHECK_INT_EQ(s.nenv, 1);
	CHECK_STR(s.env[0], "PYENV_ROOT=/root/.pyenv");
	CHECK_INT_EQ(s.nexec, 0);
	parse("/h/.asdf/shims/node", "#!/usr/bin/env bash\n"
	    "# asdf-plugin: nodejs 20.1.0\n"
	    "exec /h/.asdf/bin/asdf exec \"node\" \"$@\" "
	    "# asdf_allow: ' asdf '\n");
	CHECK_STR(s.manager_name, "asdf");
	CHECK_STR(s.program, "node");
	/* not a manager's shim: another name, no `exec' after it, a
	 * variable manager, a program name with a slash */
	parse("/s/x", "#!/bin/sh\nexec /opt/notenv exec \"$program\"\n");
	CHECK_STR(s.manager, "");
	CHECK_STR(s.exec[0], "/opt/notenv");
	parse("/s/x", "#!/bin/sh\nexec /r/pyenv which x\n");
	CHECK_STR(s.manager, "");
	parse("/s/x", "#!/bin/sh\nexec \"$ROOT/pyenv\" exec \"$program\"\n");
	CHECK_STR(s.manager, "");
	parse("/s/x", "#!/bin/sh\nexec /r/rbenv exec ../ruby\n");
	CHECK_STR(s.manager, "");
	/* only literal *_ROOT exports are kept */
	parse("/s/x", "#!/bin/sh\nexport RBENV_ROOT=\"$HOME/.rbenv\"\n"
	    "export PATH=/x\n");
	CHECK_INT_EQ(s.nenv, 0);
}

static void
test_bounds(void)
{
	char *big;
	size_t n = 3 * 8192;

	/* a line longer than the buffer and no final newline */
	if ((big = malloc(n + 32)) == NULL)
		return;
	memcpy(big, "#!/bin/sh\nexec /", 16);
	memset(big + 16, 'a', n);
	CHECK_INT_EQ(doctor_script_parse("/x", big, n + 16, &s), 0);
	CHECK_INT_EQ(s.nexec, 1);
	CHECK(strlen(s.exec[0]) < sizeof(s.exec[0]));
	free(big);
}

int
main(void)
{
	test_shebang();
	test_wrappers();
	test_managers();
	test_bounds();
	CHECK_DONE();
}
