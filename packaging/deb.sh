#!/bin/bash
# packaging/deb.sh: the Debian binary package sockseal (`make deb`).
#
# No debian/ source package and no debhelper: the project has one Makefile
# and one build, so this script is the whole recipe, in four steps:
#
#  1. Build the binaries in their own directory, build/deb (the normal
#     build/ is left alone), with SODIUM=shared (the package depends on
#     Debian's libsodium instead of carrying a static copy: one libsodium for
#     the security team to patch), SHIMDIR=/usr/lib/TRIPLET/sockseal (the
#     launcher finds the library where the package puts it), and the
#     hardening flags of dpkg-buildflags.  The flags go in the environment,
#     not on make's command line: there they would replace the Makefile's
#     own (warnings, -fPIC, -fvisibility=hidden) instead of adding to them.
#  2. Stage the tree in build/deb/debian/sockseal with install(1) at fixed
#     modes: stripped binaries, man pages and changelog by gzip -9n, the
#     documentation, bash completion, lintian's overrides (one tag, said
#     why in packaging/lintian-overrides), and policy/example.policy as the
#     conffile /etc/sockseal/policy.example (never /etc/sockseal/policy: that
#     is the default policy every shimmed program loads).
#  3. dpkg-shlibdeps computes Depends from the staged binaries (it wants a
#     debian/control: a minimal one is written next to the staging tree);
#     DEBIAN/control from packaging/control.in, conffiles, md5sums.
#  4. dpkg-deb --root-owner-group --build: every file root:root without
#     fakeroot.  The package is build/sockseal_VERSION-REVISION_ARCH.deb.
#
# Dates come from SOURCE_DATE_EPOCH (default: the last commit's), so two
# builds of one commit give the same changelog and file times.
#
# Environment: VERSION and DEB_REVISION (from the Makefile), MAKE, and
# optionally DEB_MAINTAINER.
set -euo pipefail

cd "$(dirname "$0")/.."
: "${VERSION:?VERSION unset (run make deb)}"
: "${DEB_REVISION:=1}"
: "${MAKE:=make}"
: "${DEB_MAINTAINER:=sockseal maintainers <maintainers@users.noreply.r-seed-565d1b7c.example>}"

die() { echo "deb: $*" >&2; exit 1; }
for t in dpkg-architecture dpkg-buildflags dpkg-shlibdeps dpkg-deb; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install dpkg-dev)"
done

ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
TRIPLET=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null ||
    ${CC:-gcc} -print-multiarch)
[ -n "$TRIPLET" ] || die "no multiarch triplet (dpkg-architecture, gcc -print-multiarch)"
DEBVER=$VERSION-$DEB_REVISION
SHIMDIR=/usr/lib/$TRIPLET/sockseal
DB=build/deb
ROOT=$DB/debian/sockseal
OUT=build/sockseal_${DEBVER}_$ARCH.deb
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

# 1. the binaries
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS=$(dpkg-buildflags --get CFLAGS)
CPPFLAGS=$(dpkg-buildflags --get CPPFLAGS)
LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
export CFLAGS CPPFLAGS LDFLAGS
echo "deb: building in $DB (SODIUM=shared SHIMDIR=$SHIMDIR)"
$MAKE --no-print-directory B="$DB" SAN= SODIUM=shared SHIMDIR="$SHIMDIR" \
    "$DB/libsockseal.so" "$DB/sockseal" "$DB/sockseal-keytool"

# 2. the tree
umask 022
rm -rf "$ROOT"
DOC=$ROOT/usr/share/doc/sockseal
COMP=$ROOT/usr/share/bash-completion/completions
install -d "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT$SHIMDIR" \
    "$ROOT/usr/share/man/man1" "$ROOT/usr/share/man/man5" "$DOC" "$COMP" \
    "$ROOT/etc/sockseal"
install -m 0755 "$DB/sockseal" "$DB/sockseal-keytool" "$ROOT/usr/bin/"
install -m 0644 "$DB/libsockseal.so" "$ROOT$SHIMDIR/"
# as dh_strip does: the debugging information and the notes go
strip --remove-section=.comment --remove-section=.note \
    "$ROOT/usr/bin/sockseal" "$ROOT/usr/bin/sockseal-keytool"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$ROOT$SHIMDIR/libsockseal.so"

gz() { gzip -9n <"$1" >"$2" && chmod 0644 "$2"; }
gz docs/man/sockseal.1 "$ROOT/usr/share/man/man1/sockseal.1.gz"
gz docs/man/sockseal-keytool.1 "$ROOT/usr/share/man/man1/sockseal-keytool.1.gz"
gz docs/man/sockseal-policy.5 "$ROOT/usr/share/man/man5/sockseal-policy.5.gz"
install -m 0644 README.md PROTOCOL.md SECURITY.md packaging/copyright "$DOC/"
{
    echo "sockseal ($DEBVER) unstable; urgency=medium"
    echo
    echo "  * Version $VERSION, packaged from the source tree by make deb."
    echo
    echo " -- $DEB_MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$DB/changelog.Debian"
gz "$DB/changelog.Debian" "$DOC/changelog.Debian.gz"
install -m 0644 packaging/bash-completion/sockseal \
    packaging/bash-completion/sockseal-keytool "$COMP/"
install -m 0644 policy/example.policy "$ROOT/etc/sockseal/policy.example"
# The statistics directory (shim/stats.c), made at boot for every user's
# programs to count into: the shim makes it too, but only as root.
install -d "$ROOT/usr/lib/tmpfiles.d"
install -m 0644 packaging/tmpfiles.conf "$ROOT/usr/lib/tmpfiles.d/sockseal.conf"
install -d "$ROOT/usr/share/lintian/overrides"
install -m 0644 packaging/lintian-overrides "$ROOT/usr/share/lintian/overrides/sockseal"

# 3. the control files
sed "s|@MAINTAINER@|$DEB_MAINTAINER|" packaging/source-control >"$DB/debian/control"
DEPENDS=$(cd "$DB" && dpkg-shlibdeps -O \
    "debian/sockseal/usr/bin/sockseal" "debian/sockseal/usr/bin/sockseal-keytool" \
    "debian/sockseal$SHIMDIR/libsockseal.so" | sed -n 's/^shlibs:Depends=//p')
[ -n "$DEPENDS" ] || die "dpkg-shlibdeps gave no Depends"
case "$DEPENDS" in *libsodium*) ;; *) die "Depends lacks libsodium: $DEPENDS (SODIUM=shared?)" ;; esac
SIZE=$(du -k -s --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s|@VERSION@|$DEBVER|" -e "s|@ARCH@|$ARCH|" \
    -e "s|@MAINTAINER@|$DEB_MAINTAINER|" -e "s|@SIZE@|$SIZE|" \
    -e "s|@DEPENDS@|$DEPENDS|" packaging/control.in >"$ROOT/DEBIAN/control"
echo /etc/sockseal/policy.example >"$ROOT/DEBIAN/conffiles"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o \
    -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
    >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/conffiles" "$ROOT/DEBIAN/md5sums"
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# 4. the package
rm -f build/sockseal_*.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$OUT" >/dev/null
echo "deb: $OUT (Depends: $DEPENDS)"
