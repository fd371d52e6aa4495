#!/bin/bash
# Install what the build and the tests need (Debian packages only, never pip).
# Idempotent: when everything is present it returns at once.
set -euo pipefail

# Debian packages the build and the test suite need.  Keep the list here.
DEPS_PKGS="build-essential gcc make pkg-config libsodium-dev uthash-dev shunit2
socat iperf3 tcpdump prometheus python3-prometheus-client python3 python3-nacl python3-cryptography netcat-openbsd
valgrind clang libclang-rt-14-dev iproute2 coreutils redis-server redis-tools nginx-light curl
groff-base man-db
php-fpm gunicorn
postgresql openssh-server openssh-client
memcached python3-pymemcache
apache2
varnish
uwsgi-core uwsgi-plugin-python3
python3-twisted
haproxy
dovecot-imapd mini-httpd strace
wireguard-tools
dpkg-dev lintian bash-completion
systemd python3-seccomp"

missing=()
# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${Package}:${Status}\n' $DEPS_PKGS 2>/dev/null |
    sed -n 's/:install ok installed$//p' | tr '\n' ' ' || true) "
for p in $DEPS_PKGS; do
    case "$installed" in *" $p "*) ;; *) missing+=("$p") ;; esac
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${DEPS_PKGS//$'\n'/ } present" | tr -s ' ' >&2
    exit 0
fi

echo "install-deps: missing: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: not root; install them with: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "+ apt-get update" >&2
apt-get update -q </dev/null
echo "+ apt-get install -y --no-install-recommends ${missing[*]}" >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
