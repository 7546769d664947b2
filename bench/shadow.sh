#!/usr/bin/env bash
# Does herd shadow keep up with live traffic? A keep-alive client
# (bench/loadgen) sends GETs to a "production" server on loopback at fixed
# rates; herd shadow captures them on lo and sends each, SCALE times over,
# a DELAY later, to nginx as "staging", which logs every request it
# receives: the count at the far end. Per rate, the median run (by herd's
# CPU) of RUNS: the rate the client achieved, what staging received over
# SCALE times what the client sent, herd's CPU (cores, /proc/PID/stat over
# the run) and peak RSS, its schedule lag p99 (the worst interval's) and
# what it did not send, by reason. Needs root (AF_PACKET). Loopback only.
#
#   bash bench/shadow.sh                      # RATES="1000 5000 10000" SCALE=2 RUNS=3 SECS=10
#   RATES="10000" SCALE=1 RUNS=5 bash bench/shadow.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
RATES=${RATES:-"1000 5000 10000"}
SCALE=${SCALE:-2}
RUNS=${RUNS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-100}
DELAY=${DELAY:-1s}
PROD=${PROD:-18093}
STAGING=${STAGING:-18094}
[ "$(id -u)" = 0 ] || { echo "bench: live capture needs root" >&2; exit 1; }
command -v nginx >/dev/null || { echo "bench: needs nginx (apt-get install nginx)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: needs jq" >&2; exit 1; }
tmp=$(mktemp -d)
server=""
herd=""
cleanup() {
	for p in $herd $server; do kill "$p" 2>/dev/null || true; done
	[ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/herd" ./cmd/herd
go build -o "$tmp/loadgen" ./bench/loadgen
"$tmp/loadgen" -serve "127.0.0.1:$PROD" &
server=$!
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 4096; }
http {
	access_log $tmp/nginx/access.log;
	client_body_temp_path $tmp/nginx;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$STAGING;
		location / { return 200 "ok\n"; }
	}
}
EOF
nginx -c "$tmp/nginx/nginx.conf"
sleep 0.5
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# herd runs the load plus its delay plus an interval to finish.
run_for=$((SECS + 4))

printf '%8s %9s %16s %10s %9s %13s  %s\n' rate achieved "staging/(k×sent)" "herd CPU" "RSS MiB" "lag p99 (ms)" "not sent"
for rate in $RATES; do
	rows=()
	for _ in $(seq "$RUNS"); do
		: >"$tmp/nginx/access.log"
		kill -USR1 "$(cat "$tmp/nginx.pid")" # reopen the log
		"$tmp/herd" shadow -i lo --port "$PROD" --target "http://127.0.0.1:$STAGING" --scale "$SCALE" --delay "$DELAY" \
			--interval 2s --duration "${run_for}s" --abort-on off --json "$tmp/r.json" --force >/dev/null 2>"$tmp/herd.err" &
		herd=$!
		sleep 0.5
		c0=$(cpu_ticks "$herd"); t0=$EPOCHREALTIME
		out=$("$tmp/loadgen" -addr "127.0.0.1:$PROD" -rate "$rate" -conns "$CONNS" -duration "${SECS}s")
		c1=$(cpu_ticks "$herd"); t1=$EPOCHREALTIME
		rss=$(awk '/VmHWM/ {print $2}' "/proc/$herd/status")
		wait "$herd" || true
		herd=""
		sleep 0.3
		sent=$(sed -n 's/^sent \([0-9]*\) requests.*/\1/p' <<<"$out")
		achieved=$(sed -n 's/.*: \([0-9]*\) req\/s/\1/p' <<<"$out")
		got=$(wc -l <"$tmp/nginx/access.log")
		lag=$(jq '[.steps[].schedule_lag_ms.p99 // 0] | max' "$tmp/r.json")
		notsent=$(jq -r '[.steps[].not_sent | to_entries[]] | group_by(.key) | map("\(.[0].key)=\(map(.value) | add)") | join(",")' "$tmp/r.json")
		skipped=$(jq -r '.window.skipped | to_entries | map("\(.key)=\(.value)") | join(",")' "$tmp/r.json")
		cores=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.3f", (b - a) / hz / (t1 - t0)}')
		rows+=("$cores $achieved $rss $got $sent $lag ${notsent:--}${skipped:+;$skipped}")
	done
	med=$(printf '%s\n' "${rows[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
	read -r cores achieved rss got sent lag drops <<<"$med"
	awk -v r="$rate" -v a="$achieved" -v c="$cores" -v m="$rss" -v g="$got" -v s="$sent" -v k="$SCALE" -v l="$lag" -v d="$drops" 'BEGIN {
		printf "%8d %9d %16.4f %10.3f %9.1f %13.2f  %s\n", r, a, (s > 0 ? g/(k*s) : 0), c, m/1024, l, d }'
done
echo "(staging/(k×sent): requests nginx logged over scale times those the client sent; herd CPU: cores over the load;"
echo " RSS: peak; lag p99: the worst interval's schedule lag; the client, both servers and herd share the machine)"
