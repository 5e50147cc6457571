#!/usr/bin/env bash
# Builds the msrpgw .deb from a release build with the Swift runtime linked
# statically: the binary, the systemd unit, sysusers/tmpfiles snippets and
# /etc/msrpgw/msrpgw.toml (a conffile). Prints the package's path last.
# Usage: deploy/debian/build-deb.sh [OUTPUT_DIRECTORY]   (default .build-release/deb)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${1:-$root/.build-release/deb}"
scratch="$root/.build-release"

# A warning in our own targets fails this build too (Package.swift).
MSRPGW_WARNINGS_AS_ERRORS=1 swift build -c release --product msrpgw --static-swift-stdlib --scratch-path "$scratch" >&2
binary="$scratch/release/msrpgw"

version="$(sed -n '1s/^msrpgw (\([^)]*\)).*/\1/p' deploy/debian/changelog)"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/msrpgw"
install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/usr/lib/sysusers.d" "$pkg/usr/lib/tmpfiles.d" \
  "$pkg/etc/msrpgw" "$pkg/usr/share/doc/msrpgw" "$pkg/usr/share/lintian/overrides" "$pkg/usr/share/man/man8"
install -m 0755 "$binary" "$pkg/usr/bin/msrpgw"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/bin/msrpgw"
install -m 0644 deploy/systemd/msrpgw.service "$pkg/lib/systemd/system/msrpgw.service"
install -m 0644 deploy/systemd/msrpgw.sysusers "$pkg/usr/lib/sysusers.d/msrpgw.conf"
install -m 0644 deploy/systemd/msrpgw.tmpfiles "$pkg/usr/lib/tmpfiles.d/msrpgw.conf"
# The example configuration, with the data in the unit's StateDirectory.
sed 's|^data_dir = .*|data_dir = "/var/lib/msrpgw"|' config/msrpgw.toml > "$pkg/etc/msrpgw/msrpgw.toml"
chmod 0644 "$pkg/etc/msrpgw/msrpgw.toml"
install -m 0644 deploy/debian/copyright "$pkg/usr/share/doc/msrpgw/copyright"
install -m 0644 deploy/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/msrpgw"
gzip -9n < deploy/debian/changelog > "$pkg/usr/share/doc/msrpgw/changelog.gz"
gzip -9n < README.md > "$pkg/usr/share/doc/msrpgw/README.md.gz"
gzip -9n < deploy/debian/msrpgw.8 > "$pkg/usr/share/man/man8/msrpgw.8.gz"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$pkg/DEBIAN/"
echo "/etc/msrpgw/msrpgw.toml" > "$pkg/DEBIAN/conffiles"

# Depends from the libraries the binary links (glibc, libstdc++ for toml++, SQLite...).
mkdir -p "$stage/debian"
printf 'Source: msrpgw\n\nPackage: msrpgw\nArchitecture: any\n' > "$stage/debian/control"
depends="$(cd "$stage" && dpkg-shlibdeps -O "msrpgw/usr/bin/msrpgw" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends, adduser/" \
  deploy/debian/control.in > "$pkg/DEBIAN/control"
(cd "$pkg" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)

mkdir -p "$out"
deb="$out/msrpgw_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2
echo "$deb"
