# shellcheck shell=bash
# redis helpers for 30-redis.sh and 32-flood.sh (sourced after lib.sh).

# redis_policy PORT [ACCEPT-OPTIONS]: connect and accept rules for
# 127.0.0.1:PORT with key k (the accept rule is line 3).
redis_policy() {
    loopback_policy "$1" "${2:-}" || return 1
    # shellcheck disable=SC2034  # read by the scenarios
    ACCEPT_LINE="$(basename "$POLICY"):3"
}

# redis_start PORT: a sealed redis-server on 127.0.0.1:PORT with its own
# config in $TD (no persistence, foreground), as background "srv"; its log
# goes to $TD/srv.out, the shim's to $TD/srv.err.
redis_start() {
    redis_conf "$1"
    bg srv sealed redis-server "$TD/redis.conf"
    wait_listen "$1" srv
}

# redis_conf PORT [ADDR]: $TD/redis.conf for ADDR (default 127.0.0.1):PORT.
redis_conf() {
    cat >"$TD/redis.conf" <<EOF
bind ${2:-127.0.0.1}
port $1
protected-mode yes
daemonize no
supervised no
save ""
appendonly no
dir $TD
logfile ""
loglevel notice
databases 2
EOF
}

# rcli ARGS...: a sealed redis-cli to $PORT.
rcli() { sealed redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }

# info_field FILE NAME: the value of NAME in the output of INFO.
info_field() { sed -n "s/^$2:\\([^[:space:]]*\\).*/\\1/p" "$1" | head -n 1; }
