# shellcheck shell=bash
# Helpers shared by the HTTP server scenarios 52-55 (sourced after lib.sh).
# The client is tests/programs/http_ka.py (http.client, one keep-alive
# connection per thread); the proxies' backend is tests/programs/http_origin.py.

KA=$PROGS/http_ka.py
# shellcheck disable=SC2034 # used by 52 and 55
ORIGIN=$PROGS/http_origin.py

# ka ARGS...: the sealed keep-alive client, output in $TD/ka.out.
ka() { sealed "$PY" "$KA" "$@" >"$TD/ka.out" 2>"$TD/ka.err"; }

# ka_check OUT CONNS REQS: every one of CONNS connections did its REQS
# requests right (bodies compared with the files) on one TCP connection.
ka_check() {
    local k
    assertFileNotContains "client: no error" "$1" "ERROR|FAIL"
    for ((k = 1; k <= $2; k++)); do
        assertFileContains "client conn $k: $3 requests, one connection" "$1" \
            "^conn $k: OK requests=$3 lports=1\$"
    done
}

# origin_count METHOD PATH: requests the origin logged for PATH.
origin_count() { grep -c "^origin: $1 $2 200 " "$TD/origin.err"; }

# origin_conns: distinct client ports (connections) the origin served.
origin_conns() { sed -n 's/^origin: .* lport=\([0-9]*\)$/\1/p' "$TD/origin.err" | sort -u | wc -l; }
