#!/usr/bin/env bash
# make demo: on a fresh Debian machine, install what is missing, build, and
# show an unmodified client and server talking through sealed TCP, with the
# proof taken from the wire (a tcpdump capture of the loopback traffic).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing what is missing (apt-get)"
bash tests/install-deps.sh

say "Building"
make -s all

work=$(mktemp -d /tmp/sockseal-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
say "A key and a policy sealing 127.0.0.1:$port in both directions"
build/sockseal-keytool gen "$work/demo.key"
cat > "$work/policy" <<POL
key demo $work/demo.key
connect 127.0.0.1:$port key=demo
accept  127.0.0.1:$port key=demo
POL
cat "$work/policy"
build/sockseal-keytool check "$work/policy"

secret="the launch code is $(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

wait_port() {
	for _ in $(seq 100); do
		if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "server did not start" >&2
	return 1
}

# One transfer: an unmodified socat server that upper-cases what it gets, and
# an unmodified socat client; $1 is "sealed" or "plain".
run() {
	local mode=$1 pre=() cap=$work/$1.pcap
	[ "$mode" = sealed ] && pre=(build/sockseal -f "$work/policy" --)
	tcpdump -i lo -U -s 0 -w "$cap" "tcp port $port" 2>/dev/null &
	local tpid=$!; pids+=("$tpid")
	sleep 0.5
	"${pre[@]}" socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr \
	    SYSTEM:"tr a-z A-Z" &
	local spid=$!; pids+=("$spid")
	# Probing the port would use up the one-shot server: wait on ss instead.
	for _ in $(seq 100); do
		ss -ltn "sport = :$port" | grep -q LISTEN && break
		sleep 0.05
	done
	echo "client sends: $secret"
	printf '%s\n' "$secret" | "${pre[@]}" socat - TCP:127.0.0.1:"$port" |
	    sed 's/^/client got:  /'
	wait "$spid" || true
	sleep 0.5
	kill "$tpid" 2>/dev/null || true
	wait "$tpid" 2>/dev/null || true
}

say "1. Without sockseal: plain TCP"
run plain
if tcpdump -r "$work/plain.pcap" -A 2>/dev/null | grep -q "$secret"; then
	echo "wire: the secret is visible in the capture:"
	tcpdump -r "$work/plain.pcap" -A 2>/dev/null | grep -m1 -o "the launch code[^.]*"
fi

say "2. The same two programs, both started with build/sockseal"
run sealed
echo
echo "wire: first bytes the client sent (the sockseal preface \"SKSL\", v1, suite 1):"
tcpdump -r "$work/sealed.pcap" -x 2>/dev/null | python3 "$top/tests/pcap_first_bytes.py" "$work/sealed.pcap" "$port"
if tcpdump -r "$work/sealed.pcap" -A 2>/dev/null | grep -qi "launch code"; then
	echo "FAIL: plaintext found on the wire" >&2
	exit 1
fi
echo "wire: the secret does not appear anywhere in the capture ($(tcpdump -r "$work/sealed.pcap" 2>/dev/null | wc -l) packets checked)."
say "Done: same programs, same output, nothing readable on the wire."
