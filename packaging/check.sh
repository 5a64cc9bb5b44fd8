#!/usr/bin/env bash
# Builds the .deb and checks it as a careful reviewer would: lintian, the unit
# (systemd-analyze verify and an exposure score of at most 2.0), the file list and
# modes, the maintainer scripts; then installs it for real (dpkg -i: postinst creates
# the user and fixes the config's owner), runs the installed binary as the service
# user against the installed config, expects 200 from /healthz, and purges it again.
# Needs root, cargo-deb, lintian, systemd (systemd-analyze), curl.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "packaging check FAILED: $*" >&2; exit 1; }

echo "== cargo deb"
cargo deb --locked >/dev/null
deb=$(ls -t target/debian/whacaster_*_amd64.deb | head -n 1)
echo "$deb"

echo "== maintainer scripts keep the #DEBHELPER# marker"
for s in packaging/debian/postinst packaging/debian/postrm; do
  grep -q '^#DEBHELPER#$' "$s" || fail "$s lacks #DEBHELPER#"
done

echo "== lintian (warnings fixed or overridden with a reason in packaging/lintian-overrides)"
lintian --pedantic --fail-on error,warning "$deb" 2>&1 | grep -v 'running with root privileges' || true
lintian --fail-on error,warning "$deb" >/dev/null 2>&1 || fail "lintian reports errors or warnings"

echo "== file list and modes"
listing=$(dpkg-deb -c "$deb")
expect() {
  echo "$listing" | grep -Eq "^$1 +0/0 .* \./$2\$" || fail "expected $1 ./$2 in the package"
}
expect '-rwxr-xr-x' 'usr/bin/whacaster'
expect '-rw-r-----' 'etc/whacaster/whacaster.toml'
expect '-rw-r--r--' 'usr/lib/systemd/system/whacaster.service'
expect '-rw-r--r--' 'usr/lib/sysusers.d/whacaster.conf'
expect '-rw-r--r--' 'usr/share/doc/whacaster/copyright'
if echo "$listing" | grep -q 'var/lib/whacaster'; then fail "the package must not ship the state dir"; fi
dpkg-deb -I "$deb" conffiles | grep -qx '/etc/whacaster/whacaster.toml' || fail "config is not a conffile"

echo "== systemd unit"
score=$(systemd-analyze security --offline=true packaging/whacaster.service 2>/dev/null | sed -n 's/.*Overall exposure level for whacaster.service: \([0-9.]*\).*/\1/p')
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "exposure $score is above 2.0"

echo "== install for real, run as the service user, purge"
if dpkg -s whacaster >/dev/null 2>&1; then fail "whacaster is already installed on this machine; not touching it"; fi
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  dpkg -P whacaster >/dev/null 2>&1 || true
  rm -rf /var/lib/whacaster
  userdel whacaster 2>/dev/null || true
  groupdel whacaster 2>/dev/null || true
}
trap cleanup EXIT
dpkg -i "$deb"
getent passwd whacaster >/dev/null || fail "postinst did not create the whacaster user"
[ "$(stat -c '%U:%G %a' /etc/whacaster/whacaster.toml)" = "root:whacaster 640" ] || fail "config owner/mode: $(stat -c '%U:%G %a' /etc/whacaster/whacaster.toml)"
systemd-analyze verify /usr/lib/systemd/system/whacaster.service || fail "systemd-analyze verify"
[ "$(stat -c '%U:%G %a' /var/lib/whacaster)" = "whacaster:whacaster 700" ] || fail "state dir owner/mode: $(stat -c '%U:%G %a' /var/lib/whacaster)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setpriv --reuid=whacaster --regid=whacaster --init-groups \
  env WHACASTER_LISTEN="127.0.0.1:$port" /usr/bin/whacaster serve --config /etc/whacaster/whacaster.toml \
  > /tmp/whacaster-install-test.log 2>&1 &
pid=$!
code=000
for _ in $(seq 1 100); do
  code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/healthz" || true)
  [ "$code" = 200 ] && break
  sleep 0.2
done
[ "$code" = 200 ] || { cat /tmp/whacaster-install-test.log; fail "/healthz answered $code"; }
echo "/healthz: 200"
# The operator's commands as root find the installed config and keep files the service's.
url=$(whacaster setup-url)
case "$url" in https://*/setup?token=*) echo "setup-url: ok";; *) fail "setup-url printed: $url";; esac
whacaster check >/dev/null || { whacaster check; fail "whacaster check"; }
bad=$(find /var/lib/whacaster ! -user whacaster | head -n 3)
[ -z "$bad" ] || fail "files not owned by the service user: $bad"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
dpkg -r whacaster >/dev/null
[ -f /etc/whacaster/whacaster.toml ] || fail "remove must keep the configuration"
[ -f /var/lib/whacaster/db.key ] && [ -f /var/lib/whacaster/whacaster.db ] || fail "remove must keep the data"
dpkg -P whacaster >/dev/null
[ ! -e /etc/whacaster ] || fail "purge must remove /etc/whacaster"
[ -f /var/lib/whacaster/db.key ] && [ -f /var/lib/whacaster/whacaster.db ] || fail "purge keeps the database together with its key"
echo "packaging check passed"
