#!/usr/bin/env bash
# HTTP/2 replay on schedule: herd against nginx with http2 on TLS, on
# loopback, at rising rates, next to h2load's closed-loop maximum against
# the same nginx. nginx runs one worker pinned to CPU 1; herd and h2load
# are pinned to CPU 0 (GOMAXPROCS=1 for herd, one thread for h2load).
#
# Prints, per rate, the median of REPEAT runs: herd's achieved rate,
# schedule-lag p99, latency p99 (from each request's due time) and CPU;
# "holds" means achieved >= 99% of the rate and lag p99 < 1 ms. Then
# h2load's maximum with as many connections and streams as herd used.
#
# Needs: nginx and h2load (apt-get install nginx nghttp2-client), openssl.
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
RATES=${RATES:-"1000 2000 4000 6000 8000 10000 12000"}
SECS=${SECS:-8}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-100}
PORT=${PORT:-18443}
work=$(mktemp -d)
. "$(dirname "$0")/nginx.sh"
cleanup() {
	if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench.test \
	-addext subjectAltName=DNS:bench.test,IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
ulimit -n 200000 2>/dev/null || true
start_nginx 10 "ssl http2" "http2_max_concurrent_streams 128; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;"

go build -o "$work/herd" ./cmd/herd
# One pass of the tape covers the run at the highest rate, so that the
# connections (and their TLS handshakes) open once, at the start.
maxk=$(printf "%s\n" $RATES | sort -g | tail -1)
go run ./bench/ratetape -o "$work/base.tape" -conns "$CONNS" -rate 1000 -duration "$((SECS * maxk / 1000 + 2))s"

median() { printf "%s\n" "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf "%8s | %10s %10s %10s %10s %9s %6s\n" rate herd_rps lag_p50 lag_p99 lat_p99 herd_cpu holds
for rate in $RATES; do
	scale=$(awk -v r="$rate" 'BEGIN { printf "%g", r / 1000 }')
	rps=() lag50=() lag=() lat=() cpu=()
	for i in $(seq "$REPEAT"); do
		GOMAXPROCS=1 taskset -c 0 "$work/herd" replay "$work/base.tape" --target "https://127.0.0.1:$PORT" \
			--protocol h2 --ca-cert "$work/cert.pem" --scale-mode compress --scale "$scale" --duration "${SECS}s" \
			--abort-on off --json "$work/run-$rate-$i.json" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
		read -r a l50 l p c < <(python3 - "$work/run-$rate-$i.json" "$rate" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["steps"][0]
print(s["sent"] / s["duration_s"] if s["errors"] == 0 else 0, s["schedule_lag_ms"]["p50"], s["schedule_lag_ms"]["p99"], s["latency_ms"]["p99"], s["cpu_cores"])
PY
)
		rps+=("$a") lag50+=("$l50") lag+=("$l") lat+=("$p") cpu+=("$c")
	done
	mr=$(median "${rps[@]}") m50=$(median "${lag50[@]}") ml=$(median "${lag[@]}") mp=$(median "${lat[@]}") mc=$(median "${cpu[@]}")
	holds=$(awk -v a="$mr" -v r="$rate" -v l="$ml" 'BEGIN { print (a >= 0.99 * r && l < 1) ? "yes" : "no" }')
	printf "%8d | %10.0f %10.3f %10.3f %10.3f %9.2f %6s\n" "$rate" "$mr" "$m50" "$ml" "$mp" "$mc" "$holds"
done

echo
echo "h2load closed loop (1 thread on CPU 0, $CONNS connections, 1 and 10 streams each, ${SECS}s):"
for m in 1 10; do
	vals=()
	for i in $(seq "$REPEAT"); do
		v=$(taskset -c 0 h2load -t 1 -c "$CONNS" -m "$m" -D "$SECS" "https://127.0.0.1:$PORT/" 2>&1 |
			awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") { gsub(",", "", $(i - 1)); print $(i - 1) } }')
		vals+=("$v")
	done
	printf "  -m %-3d %10.0f req/s (median of %d)\n" "$m" "$(median "${vals[@]}")" "$REPEAT"
done
