#!/usr/bin/env bash
# Brings up the example pair on this machine: two keelsond instances on 127.0.0.1 replicating
# resource r0 (64 MiB, protocol C, CRAM-HMAC), alpha Primary, its data on NBD. Run again to
# restart; `examples/pair/up.sh down` stops both. Needs only cargo.
#
#   PAIR_DIR  where the backing files, meta data, sockets and logs live (default /tmp/keelson-pair)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${PAIR_DIR:-/tmp/keelson-pair}"
mkdir -p "$dir"

cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p keelson-linux --bin keelsond --bin keelctl
bin="${CARGO_TARGET_DIR:-$root/target}/release"
ctl() { "$bin/keelctl" -s "$dir/$1.sock" "${@:2}"; }

stop() {
	for n in alpha beta; do
		if [ -f "$dir/$n.pid" ] && kill -0 "$(cat "$dir/$n.pid")" 2>/dev/null; then
			kill "$(cat "$dir/$n.pid")"
			while kill -0 "$(cat "$dir/$n.pid" 2>/dev/null)" 2>/dev/null; do sleep 0.1; done
		fi
	done
}
stop
[ "${1:-}" = down ] && { echo "pair stopped"; exit 0; }

cp "$here/alpha.conf" "$here/beta.conf" "$dir/"
cd "$dir"
for n in alpha beta; do
	"$bin/keelsond" --config "$n.conf" --socket "$dir/$n.sock" --pidfile "$dir/$n.pid" \
		--unixctl none --log-file "$dir/$n.log" --detach --no-chdir
done

# Wait for the two to find each other (connect_int is 1 s).
for _ in $(seq 100); do
	ctl alpha status r0 --json | grep -q '"connection-state": "Connected"' && break
	sleep 0.1
done
# A fresh pair has no UpToDate side yet: alpha's data is declared the good copy and beta
# receives all of it (the initial full sync). Later runs find alpha UpToDate already.
if ctl alpha status r0 --json | grep -q '"disk-state": "Inconsistent"'; then
	ctl alpha primary r0 --force
else
	ctl alpha primary r0
fi
ctl alpha status r0
cat <<EOT

The pair is up in $dir (logs: alpha.log, beta.log).
  write:   qemu-io -f raw -c 'write -P 0xab 0 1M' nbd+unix:///r0?socket=$dir/alpha-r0.nbd
  or:      qemu-img convert -n -O raw SOME.img nbd://127.0.0.1:10809/r0
  watch:   $bin/keelctl -s $dir/alpha.sock status r0     (or: watch -n1 ...)
  compare: cmp $dir/alpha.img $dir/beta.img              (once the resync is done)
  stop:    $here/up.sh down
EOT
