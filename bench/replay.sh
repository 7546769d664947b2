#!/usr/bin/env bash
# Replay throughput on schedule, side by side in one run: herd (its event
# loops, and its goroutine engine as before them) against vegeta (default
# and -max-workers 50) at rising constant rates, wrk's closed-loop maximum
# for reference, and herd on a bursty recorded mix (4 requests per new
# connection, session pacing). Target: nginx, one worker, on loopback.
#
# The constant-rate tape is 50 keep-alive connections at 1000 req/s in all
# (bench/ratetape), replayed compressed with session pacing: at any rate
# herd sends on those 50 connections, each request after the previous
# response on its connection, as vegeta -max-workers 50 sends on its 50
# workers (herd still measures from each request's due time, and reports
# how late it sent as schedule lag). The mix (bench/mixtape, 100 req/s of
# 4-request connections) is replayed in clone mode: at k times its rate,
# k times the users. Between runs the script waits for the loopback's
# TIME_WAIT sockets towards nginx to drain, so that no run inherits
# another's ephemeral ports.
#
# Two placements: "pinned" gives each generator CPU 0 alone (GOMAXPROCS=1,
# vegeta -cpus 1, wrk -t1) and nginx CPU 1; "unpinned" lets everything
# run anywhere (GOMAXPROCS=2, vegeta -cpus 2, wrk -t2).
#
# A rate is "held" when the median of REPEAT runs achieved >= 99% of it
# with latency p99 <= 10 ms (nginx answers in about 0.1 ms) and, for herd,
# its own schedule lag p99 <= 5 ms (vegeta reports none). Each ladder
# climbs until a rate is not held; the last held rate is the generator's.
# CPU per request is measured at a fixed 10k req/s (user + system time of
# the generator's process over requests sent), pinned.
#
# Needs: nginx and wrk (apt-get install nginx wrk), vegeta
# (go install github.com/tsenart/vegeta/v12@v12.13.0). Loopback only.
# Run it under the machine lock: flock /tmp/herd-machine.lock bash bench/replay.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
SECS=${SECS:-6}
REPEAT=${REPEAT:-3}
PORT=${PORT:-18080}
PLACEMENTS=${PLACEMENTS:-"pinned unpinned"}
CONST_RATES=${CONST_RATES:-"10000 20000 30000 40000 50000 60000 70000 80000 100000"}
MIX_RATES=${MIX_RATES:-"5000 10000 15000 20000 25000 30000 40000"}
GENERATORS=${GENERATORS:-"herd-loop herd-goroutine vegeta vegeta-mw50"}
VEGETA=${VEGETA:-$(command -v vegeta || echo "$HOME/go/bin/vegeta")}
[ -x "$VEGETA" ] || { echo "bench: vegeta not found (go install github.com/tsenart/vegeta/v12@v12.13.0)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d)
. "$(dirname "$0")/nginx.sh"
cleanup() {
	if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 200000 2>/dev/null || true


go build -o "$work/herd" ./cmd/herd
go run ./bench/ratetape -o "$work/const.tape" -conns 50 -rate 1000 -duration 10s
go run ./bench/mixtape -o "$work/mix.tape" -rate 100 -duration "$((SECS + 4))s"

# median VALUES...: the middle of an odd number of values.
median() { printf "%s\n" "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# placement sets how a generator is started: taskset and core counts.
placement() {
	case $1 in
	pinned) PIN="taskset -c 0" PROCS=1 ;;
	unpinned) PIN="" PROCS=2 ;;
	esac
}

# run_herd ENGINE TAPE RATE1X RATE PACING MODE: one herd run; prints
# achieved lag_p99 latency_p99 cpu_us_per_request.
run_herd() {
	local engine=$1 tape=$2 base=$3 rate=$4 pacing=$5 mode=$6
	local scale
	scale=$(awk -v r="$rate" -v b="$base" 'BEGIN { printf "%g", r / b }')
	# Exit 3 is a step whose SLOs failed (or that herd itself limited):
	# its results are what is measured here.
	local code=0
	GOMAXPROCS=$PROCS /usr/bin/time -f "%U %S" -o "$work/time" $PIN "$work/herd" replay "$tape" --target "http://127.0.0.1:$PORT" \
		--scale "$scale" --scale-mode "$mode" --duration "${SECS}s" --pacing "$pacing" --engine "$engine" --abort-on off \
		--json "$work/h.json" --force >/dev/null 2>"$work/h.err" || code=$?
	if [ "$code" != 0 ] && [ "$code" != 3 ]; then
		echo "herd failed at $rate req/s:" >&2
		tail -3 "$work/h.err" >&2
		exit 1
	fi
	python3 - "$work/h.json" "$work/time" "$rate" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["steps"][0]
u, k = map(float, open(sys.argv[2]).read().split()[-2:])
rate = float(sys.argv[3])
# The tape's ramp-in keeps offered a little under the nominal rate:
# achieved is scaled to the nominal rate by achieved/offered.
print(s["achieved_rps"] / s["offered_rps"] * rate, s["schedule_lag_ms"]["p99"], s["latency_ms"]["p99"], (u + k) / max(s["sent"], 1) * 1e6)
PY
}

# run_vegeta WORKERS RATE: one vegeta run (WORKERS "" for its default);
# prints achieved lag_p99(-) latency_p99 cpu_us_per_request.
run_vegeta() {
	local workers=$1 rate=$2 opts=()
	[ -z "$workers" ] || opts=(-max-workers "$workers")
	echo "GET http://127.0.0.1:$PORT/" | /usr/bin/time -f "%U %S" -o "$work/time" $PIN "$VEGETA" -cpus "$PROCS" attack -rate "$rate" \
		-duration "${SECS}s" -timeout 10s "${opts[@]}" >"$work/v.bin" 2>"$work/v.err" || { echo "vegeta failed at $rate req/s:" >&2; tail -3 "$work/v.err" >&2; exit 1; }
	"$VEGETA" report -type json <"$work/v.bin" | python3 -c '
import json, sys
r = json.load(sys.stdin)
u, k = map(float, open(sys.argv[1]).read().split()[-2:])
print(r["throughput"], "-", r["latencies"]["99th"] / 1e6, (u + k) / max(r["requests"], 1) * 1e6)' "$work/time"
}

# drain waits (a minute at most) until fewer than DRAIN (2,000)
# connections to nginx sit in TIME_WAIT. Loopback connects reuse a
# TIME_WAIT port where the kernel allows it (net.ipv4.tcp_tw_reuse 1 or
# 2): there a higher DRAIN spares the minute each run of the mix leaves.
DRAIN=${DRAIN:-2000}
drain() {
	for _ in $(seq 60); do
		[ "$(ss -Htan state time-wait "( dport = :$PORT or sport = :$PORT )" | wc -l)" -lt "$DRAIN" ] && return
		sleep 1
	done
}

# measure GEN KIND RATE: the median of REPEAT runs; prints achieved
# lag_p99 latency_p99 cpu_us held.
measure() {
	local gen=$1 kind=$2 rate=$3 a=() l=() p=() c=()
	for _ in $(seq "$REPEAT"); do
		drain
		case $gen/$kind in
		herd-loop/const) out=$(run_herd loop "$work/const.tape" 1000 "$rate" session compress) ;;
		herd-goroutine/const) out=$(run_herd goroutine "$work/const.tape" 1000 "$rate" session compress) ;;
		herd-loop-strict/const) out=$(run_herd loop "$work/const.tape" 1000 "$rate" strict compress) ;;
		herd-loop/mix) out=$(run_herd loop "$work/mix.tape" 100 "$rate" session clone) ;;
		herd-goroutine/mix) out=$(run_herd goroutine "$work/mix.tape" 100 "$rate" session clone) ;;
		vegeta/const) out=$(run_vegeta "" "$rate") ;;
		vegeta-mw50/const) out=$(run_vegeta 50 "$rate") ;;
		esac
		read -r x y z w <<<"$out"
		a+=("$x") l+=("$y") p+=("$z") c+=("$w")
	done
	local ma ml mp mc
	ma=$(median "${a[@]}") mp=$(median "${p[@]}") mc=$(median "${c[@]}")
	ml="-"
	[ "${l[0]}" = "-" ] || ml=$(median "${l[@]}")
	held=$(awk -v a="$ma" -v r="$rate" -v l="$ml" -v p="$mp" 'BEGIN { print (a >= 0.99 * r && p <= 10 && (l == "-" || l <= 5)) ? "yes" : "no" }')
	echo "$ma $ml $mp $mc $held"
}

# ladder GEN KIND RATES...: climbs until a rate is not held; prints a row
# per rate and sets BEST.
ladder() {
	local gen=$1 kind=$2
	shift 2
	BEST=0
	for rate in "$@"; do
		read -r a l p c held < <(measure "$gen" "$kind" "$rate")
		printf "%-10s %-15s %-6s %8s | %10.0f %9s %9.2f %8.1f %5s\n" "$PLACE" "$gen" "$kind" "$rate" "$a" "$l" "$p" "$c" "$held"
		[ "$held" = yes ] || break
		BEST=$rate
	done
}

summary=()
for PLACE in $PLACEMENTS; do
	placement "$PLACE"
	if [ "$PLACE" = pinned ]; then start_nginx 10; else start_nginx off; fi
	printf "%-10s %-15s %-6s %8s | %10s %9s %9s %8s %5s\n" placement generator tape rate achieved "lag_p99" "lat_p99" "cpu_us" held
	for gen in $GENERATORS; do
		ladder "$gen" const $CONST_RATES
		summary+=("$PLACE $gen const held $BEST")
	done
	for gen in $GENERATORS; do
		case $gen in herd-*) ;; *) continue ;; esac
		ladder "$gen" mix $MIX_RATES
		summary+=("$PLACE $gen mix held $BEST")
	done
	w=()
	threads=$PROCS
	for _ in $(seq "$REPEAT"); do
		drain
		w+=("$($PIN wrk -t"$threads" -c100 -d"${SECS}s" "http://127.0.0.1:$PORT/" | awk '/Requests\/sec/ { print $2 }')")
	done
	summary+=("$PLACE wrk const closed-loop-max $(median "${w[@]}") (runs: ${w[*]})")
done

# CPU per request at a fixed 10k req/s, pinned.
placement pinned
start_nginx 10
for gen in $GENERATORS; do
	read -r a l p c held < <(measure "$gen" const 10000)
	summary+=("pinned $gen const cpu_us_per_request_at_10k $c (achieved $a, latency p99 $p ms)")
done
echo
printf "%s\n" "${summary[@]}"
