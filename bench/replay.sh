#!/usr/bin/env bash
# Replay throughput on schedule: herd against nginx on loopback at rising
# rates, with vegeta at the same rates and wrk's closed-loop maximum for
# reference, all in one run. nginx runs one worker pinned to CPU 1; each
# load generator is pinned to CPU 0 with one core (GOMAXPROCS=1).
#
# Prints, per rate, the median of REPEAT runs: herd's achieved rate
# (scaled to the nominal rate: herd's own offered rate excludes the tape's
# ramp-in), schedule-lag p99, latency p99 (from each request's due time)
# and CPU, and vegeta's throughput and latency p99 (from its send).
# "Holds" means achieved >= 99% of the rate and, for herd, schedule lag
# p99 < 1 ms (vegeta does not report lag).
#
# Needs: nginx and wrk (apt-get install nginx wrk), vegeta
# (go install github.com/tsenart/vegeta/v12@v12.13.0). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
RATES=${RATES:-"1000 2000 4000 6000 8000 10000 12000 15000 20000 25000 30000 40000"}
SECS=${SECS:-8}
REPEAT=${REPEAT:-3}
PORT=${PORT:-18080}
VEGETA=${VEGETA:-$(command -v vegeta || echo "$HOME/go/bin/vegeta")}
work=$(mktemp -d)
nginx_pid=""
cleanup() {
	if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 10;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 65536; }
worker_rlimit_nofile 200000;
http {
	access_log off;
	keepalive_requests 1000000;
	keepalive_timeout 120s;
	server {
		listen 127.0.0.1:$PORT backlog=65535 reuseport;
		location / { return 200 "ok"; }
	}
}
NGINX
ulimit -n 200000 2>/dev/null || true
nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$work/nginx.pid")

go build -o "$work/herd" ./cmd/herd
go run ./bench/ratetape -o "$work/base.tape" -conns 100 -rate 1000 -duration "$((SECS + 1))s"

# median VALUES...: the middle of an odd number of values.
median() { printf "%s\n" "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf "%8s | %10s %10s %10s %9s %6s | %10s %10s %6s\n" rate herd_rps lag_p99 lat_p99 herd_cpu holds vegeta_rps vegeta_p99 holds
for rate in $RATES; do
	scale=$(awk -v r="$rate" 'BEGIN { printf "%g", r / 1000 }')
	hr=() hl=() hp=() hc=() vr=() vp=()
	for _ in $(seq "$REPEAT"); do
		GOMAXPROCS=1 taskset -c 0 "$work/herd" replay "$work/base.tape" --target "http://127.0.0.1:$PORT" \
			--scale "$scale" --duration "${SECS}s" --abort-on off --json "$work/h.json" --force >/dev/null 2>"$work/h.err" ||
			{ echo "herd failed at $rate req/s:" >&2; tail -3 "$work/h.err" >&2; exit 1; }
		read -r a l p c < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["steps"][0]
print(s["achieved_rps"] / s["offered_rps"] * float(sys.argv[2]), s["schedule_lag_ms"]["p99"], s["latency_ms"]["p99"], s["cpu_cores"])' "$work/h.json" "$rate")
		hr+=("$a") hl+=("$l") hp+=("$p") hc+=("$c")
		echo "GET http://127.0.0.1:$PORT/" | taskset -c 0 "$VEGETA" -cpus 1 attack -rate "$rate" -duration "${SECS}s" \
			-timeout 10s -max-workers 2000 -max-connections 2000 >"$work/v.bin" 2>"$work/v.err" ||
			{ echo "vegeta failed at $rate req/s:" >&2; tail -3 "$work/v.err" >&2; exit 1; }
		read -r t p < <("$VEGETA" report -type json <"$work/v.bin" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["throughput"], r["latencies"]["99th"] / 1e6)')
		vr+=("$t") vp+=("$p")
	done
	h_rps=$(median "${hr[@]}") h_lag=$(median "${hl[@]}") h_lat=$(median "${hp[@]}") h_cpu=$(median "${hc[@]}")
	v_rps=$(median "${vr[@]}") v_p99=$(median "${vp[@]}")
	h_ok=$(awk -v a="$h_rps" -v r="$rate" -v l="$h_lag" 'BEGIN { print (a >= 0.99 * r && l < 1) ? "yes" : "no" }')
	v_ok=$(awk -v a="$v_rps" -v r="$rate" 'BEGIN { print (a >= 0.99 * r) ? "yes" : "no" }')
	printf "%8s | %10.0f %8.3fms %8.3fms %9.2f %6s | %10.0f %8.2fms %6s\n" "$rate" "$h_rps" "$h_lag" "$h_lat" "$h_cpu" "$h_ok" "$v_rps" "$v_p99" "$v_ok"
done
wrk_rps=$(taskset -c 0 wrk -t1 -c100 -d"${SECS}s" "http://127.0.0.1:$PORT/" | awk '/Requests\/sec/ { print $2 }')
echo "wrk closed-loop max (1 thread, 100 connections, CPU 0): $wrk_rps req/s"
