#!/usr/bin/env bash
# Overhead of the capture agent: herd capture -i lo, as the sidecar runs it
# (rotating, with the metrics endpoint), while keep-alive HTTP flows on
# loopback at fixed rates. Per rate: the rate the client achieved, the
# agent's CPU (cores, from /proc/PID/stat over the load), its peak RSS, the
# packets the kernel dropped (from its metrics) and the exchanges it
# recorded over the requests sent. Each rate runs RUNS times; the median
# run by agent CPU is printed. Needs root (AF_PACKET). Loopback only.
#
#   bash bench/agent.sh                       # RATES="1000 10000 50000" RUNS=3 SECS=10
#   RATES="50000" RUNS=5 bash bench/agent.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
RATES=${RATES:-"1000 10000 50000"}
RUNS=${RUNS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-100}
PORT=${PORT:-18090}
MPORT=${MPORT:-19090}
[ "$(id -u)" = 0 ] || { echo "bench: live capture needs root" >&2; exit 1; }
tmp=$(mktemp -d)
server=""
agent=""
cleanup() {
	for p in $agent $server; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/herd" ./cmd/herd
go build -o "$tmp/loadgen" ./bench/loadgen
"$tmp/loadgen" -serve "127.0.0.1:$PORT" &
server=$!
sleep 0.5
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { sed -n "s/^$1 //p" "$tmp/metrics" | head -1; }

printf '%8s %10s %10s %10s %10s %12s %14s\n' rate "achieved" "packets/s" "agent CPU" "RSS MiB" "kernel drops" "recorded/sent"
for rate in $RATES; do
	rows=()
	for _ in $(seq "$RUNS"); do
		rm -rf "$tmp/tapes" && mkdir "$tmp/tapes"
		"$tmp/herd" capture -i lo --port "$PORT" --rotate 256MiB --keep 2 --metrics-addr "127.0.0.1:$MPORT" \
			-o "$tmp/tapes/agent.tape" 2>"$tmp/agent.err" &
		agent=$!
		for _ in $(seq 50); do curl -sf "http://127.0.0.1:$MPORT/metrics" >/dev/null 2>&1 && break; sleep 0.1; done
		c0=$(cpu_ticks "$agent"); t0=$EPOCHREALTIME
		out=$("$tmp/loadgen" -addr "127.0.0.1:$PORT" -rate "$rate" -conns "$CONNS" -duration "${SECS}s")
		sleep 1 # the agent settles the last exchanges
		c1=$(cpu_ticks "$agent"); t1=$EPOCHREALTIME
		rss=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
		curl -sf "http://127.0.0.1:$MPORT/metrics" >"$tmp/metrics"
		kill -TERM "$agent"; wait "$agent" || true
		agent=""
		sent=$(sed -n 's/^sent \([0-9]*\) requests.*/\1/p' <<<"$out")
		achieved=$(sed -n 's/.*: \([0-9]*\) req\/s/\1/p' <<<"$out")
		drops=$(metric 'herd_capture_packets_dropped_total{cause="kernel"}')
		exch=$(metric herd_capture_exchanges_total)
		pkts=$(metric herd_capture_packets_total)
		cores=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.3f", (b - a) / hz / (t1 - t0)}')
		rows+=("$cores $achieved $rss $drops $exch $sent $pkts")
	done
	med=$(printf '%s\n' "${rows[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
	read -r cores achieved rss drops exch sent pkts <<<"$med"
	awk -v r="$rate" -v a="$achieved" -v c="$cores" -v m="$rss" -v d="$drops" -v e="$exch" -v s="$sent" -v p="$pkts" -v secs="$SECS" 'BEGIN {
		printf "%8d %10d %10.0f %10.3f %10.1f %12d %14.4f\n", r, a, p/secs, c, m/1024, d, (s > 0 ? e/s : 0) }'
done
echo "(packets/s: packets the agent read over the load; agent CPU: cores over the load plus 1 s; RSS: peak;"
echo " the client, the server and the agent share the machine)"
