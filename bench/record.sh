#!/usr/bin/env bash
# herd record in front of nginx (one worker), on 127.0.0.1: the latency
# the proxy adds (wrk, one connection, p50 and p99, nginx directly vs
# through herd record) and the most requests per second herd record serves
# on one core (wrk, 64 connections). The machine has two cores: herd record
# (GOMAXPROCS=1) or, for the direct runs, nginx gets core 1 to itself; wrk
# and, behind the proxy, nginx share core 0. The proxy writes a real tape,
# redaction on, to a temporary directory. Each measure runs RUNS times;
# medians are printed, with herd's CPU use over the throughput runs (near
# 100% means the proxy, not the load generator, was the limit).
#
#   bash bench/record.sh                 # RUNS=5 DURATION=10s
#   RUNS=3 DURATION=5s bash bench/record.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
RUNS=${RUNS:-5}
DURATION=${DURATION:-10s}
NGINX_PORT=${NGINX_PORT:-18580}
PROXY_PORT=${PROXY_PORT:-18581}
for tool in nginx wrk taskset; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is needed (apt-get install nginx wrk util-linux)" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "bench: needs 2 cores" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/herd" ./cmd/herd

# A response like a small JSON API's: 200, about 100 bytes.
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100000000;
	keepalive_timeout 300s;
	client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		location / {
			default_type application/json;
			return 200 '{"id":12345,"name":"item","price":9.99,"tags":["a","b"],"in_stock":true,"updated":"2026-12-01"}\n';
		}
	}
}
EOF

start_nginx() { # core
	taskset -c "$1" nginx -c "$tmp/nginx.conf" -e "$tmp/error.log"
	for _ in $(seq 50); do [ -s "$tmp/nginx.pid" ] && break; sleep 0.1; done
	# The worker inherits the master's core.
}
stop_nginx() {
	kill "$(cat "$tmp/nginx.pid")"
	for _ in $(seq 50); do [ -e "$tmp/nginx.pid" ] || break; sleep 0.1; done
}
start_herd() {
	rm -f "$tmp"/rec*.tape*
	GOMAXPROCS=1 taskset -c 1 "$tmp/herd" record --listen 127.0.0.1:$PROXY_PORT \
		--upstream http://127.0.0.1:$NGINX_PORT -o "$tmp/rec.tape" 2>"$tmp/herd.err" &
	herd_pid=$!
	pids+=("$herd_pid")
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/" 2>/dev/null && return
		sleep 0.05
	done
	echo "bench: herd record did not start" >&2; cat "$tmp/herd.err" >&2; exit 1
}
stop_herd() {
	kill -INT "$herd_pid"
	wait "$herd_pid" || true
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wrk's latency percentiles and rate, in microseconds and req/s.
run_wrk() { # connections url
	taskset -c 0 wrk -t1 -c"$1" -d"$DURATION" --latency "$2" >"$tmp/wrk.out"
	awk '
		function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return v*1000; if (v ~ /s$/) return v*1e6; return v }
		$1 == "50%" { p50 = us($2) } $1 == "99%" { p99 = us($2) }
		$1 == "Requests/sec:" { rps = $2 }
		/Socket errors|Non-2xx/ { errs = errs " " $0 }
		END { printf "%s %s %s%s\n", p50, p99, rps, errs }' "$tmp/wrk.out"
}
median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }

direct_lat=(); proxy_lat=(); direct_rps=(); proxy_rps=(); cpu=()
for i in $(seq "$RUNS"); do
	# nginx alone on core 1.
	start_nginx 1
	direct_lat+=("$(run_wrk 1 "http://127.0.0.1:$NGINX_PORT/items/1")")
	direct_rps+=("$(run_wrk 64 "http://127.0.0.1:$NGINX_PORT/items/1")")
	stop_nginx
	# nginx on core 0 with wrk, herd record alone on core 1.
	start_nginx 0
	start_herd
	proxy_lat+=("$(run_wrk 1 "http://127.0.0.1:$PROXY_PORT/items/1")")
	t0=$(cpu_ticks "$herd_pid"); s0=$EPOCHREALTIME
	proxy_rps+=("$(run_wrk 64 "http://127.0.0.1:$PROXY_PORT/items/1")")
	t1=$(cpu_ticks "$herd_pid"); s1=$EPOCHREALTIME
	cpu+=("$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (e - s) }')")
	stop_herd
	stop_nginx
	grep -q "herd: recorded" "$tmp/herd.err" || { cat "$tmp/herd.err" >&2; exit 1; }
	recorded=$(sed -n 's/^herd: recorded \([0-9]*\) exchanges.* of \([0-9]*\) requests.*/\1 of \2/p' "$tmp/herd.err")
	echo "run $i: direct ${direct_lat[-1]} / ${direct_rps[-1]}; proxy ${proxy_lat[-1]} / ${proxy_rps[-1]}; herd CPU ${cpu[-1]}%; recorded $recorded" >&2
done

col() { printf '%s\n' "${@:2}" | awk -v c="$1" '{print $c}' | median; }
d50=$(col 1 "${direct_lat[@]}"); d99=$(col 2 "${direct_lat[@]}")
p50=$(col 1 "${proxy_lat[@]}"); p99=$(col 2 "${proxy_lat[@]}")
drps=$(col 3 "${direct_rps[@]}"); prps=$(col 3 "${proxy_rps[@]}")
pcpu=$(printf '%s\n' "${cpu[@]}" | median)
echo
printf '%-34s %12s %12s %14s\n' "" "p50 (µs)" "p99 (µs)" "req/s (64 c)"
printf '%-34s %12.0f %12.0f %14.0f\n' "nginx directly" "$d50" "$d99" "$drps"
printf '%-34s %12.0f %12.0f %14.0f\n' "through herd record (1 core)" "$p50" "$p99" "$prps"
printf '%-34s %12.0f %12.0f\n' "added by the proxy" "$(awk -v a="$p50" -v b="$d50" 'BEGIN{print a-b}')" "$(awk -v a="$p99" -v b="$d99" 'BEGIN{print a-b}')"
echo "(medians of $RUNS runs of $DURATION; latency with 1 connection, rate with 64; herd CPU over the rate runs: median $pcpu%)"
