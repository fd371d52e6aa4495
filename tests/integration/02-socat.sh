#!/bin/bash
# socat at both ends, both sealed: blocking read/write, select, half-close,
# fork per connection.
. "$(dirname "$0")/lib.sh"

# both_policy PORT: connect and accept rules for 127.0.0.1:PORT with key k.
both_policy() {
    loopback_policy "$1" || return 1
}

test_echo_4MiB_with_half_close() {
    local port m
    port=$(free_port)
    both_policy "$port" || { fail "no key"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/in" $((4 * 1024 * 1024)) "$m"
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    sealed socat -t 30 "TCP:127.0.0.1:$port" STDIO <"$TD/in" >"$TD/out" 2>"$TD/cli.err"
    assertEquals "client socat exit status" 0 $?
    wait_bg srv
    assertEquals "server socat exit status" 0 $?
    cap_stop
    assertSameFile "4 MiB echoed back" "$TD/in" "$TD/out"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes $((8 * 1024 * 1024))
    assertEquals "capture: preface, no plaintext" 0 $?
}

test_one_way_each_direction() {
    local port
    port=$(free_port)
    both_policy "$port" || { fail "no key"; return 0; }
    mkdata "$TD/up" $((4 * 1024 * 1024))
    mkdata "$TD/down" $((3 * 1024 * 1024 + 17))
    # client -> server
    bg srv sealed socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$TD/up.got,creat,trunc"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    sealed socat -u "OPEN:$TD/up" "TCP:127.0.0.1:$port" 2>"$TD/cli1.err"
    assertEquals "upload client exit status" 0 $?
    wait_bg srv
    assertEquals "upload server exit status" 0 $?
    assertSameFile "upload" "$TD/up" "$TD/up.got"
    # server -> client
    bg srv2 sealed socat -u "OPEN:$TD/down" "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr"
    wait_listen "$port" srv2 || { fail "server 2 did not listen"; return 0; }
    sealed socat -u "TCP:127.0.0.1:$port" "OPEN:$TD/down.got,creat,trunc" 2>"$TD/cli2.err"
    assertEquals "download client exit status" 0 $?
    wait_bg srv2
    assertEquals "download server exit status" 0 $?
    assertSameFile "download" "$TD/down" "$TD/down.got"
}

test_fork_per_connection_server() {
    local port i
    port=$(free_port)
    both_policy "$port" || { fail "no key"; return 0; }
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    for i in 1 2 3; do
        mkdata "$TD/in$i" $((i * 300000))
        sealed socat -t 30 "TCP:127.0.0.1:$port" STDIO <"$TD/in$i" >"$TD/out$i" 2>"$TD/cli$i.err"
        assertEquals "client $i exit status" 0 $?
        assertSameFile "client $i echo through a forked child" "$TD/in$i" "$TD/out$i"
    done
    assertTrue "fork server still running" "running srv"
    stop_bg srv
    cap_stop
    cap_check --preface "$PREFACE_HEX" --min-conns 3
    assertEquals "every connection sealed" 0 $?
}

test_small_writes_many_records() {
    local port
    port=$(free_port)
    both_policy "$port" || { fail "no key"; return 0; }
    # 16-byte reads/writes: about 80000 records each way (rekey at 65536)
    mkdata "$TD/in" 1300000
    bg srv sealed socat -b 16 -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    sealed socat -b 16 -t 30 "TCP:127.0.0.1:$port" STDIO <"$TD/in" >"$TD/out" 2>"$TD/cli.err"
    assertEquals "client exit status" 0 $?
    wait_bg srv
    assertEquals "server exit status" 0 $?
    assertSameFile "small-record echo" "$TD/in" "$TD/out"
}

. shunit2
