#!/usr/bin/env bash
# herd's memory at scale: peak RSS (/usr/bin/time -v) of whole replays
# against nginx on loopback, where a plan held in memory would not fit:
#
#   - a 1 GB tape (bench/mixtape: about 13 million requests of a bursty
#     mix on 3 million connections, 100 req/s over a day and a half)
#     replayed whole at --scale 100 for DURATION (10k req/s), with each
#     engine: the plan is read once to be counted and then streamed;
#   - the busiest 10 s of a 20 req/s mix at --scale 1000 (20k req/s,
#     5,000 new connections a second) with --max-conns at the plan's
#     estimate of connections open at once: requests that find every
#     connection taken are counted as not sent, max_conns;
#   - --scale 10000 of the same, 200k req/s, which one process cannot
#     send: the requests that find no slot are not sent, and do not wait
#     in memory; --scale 100000, which herd refuses before sending.
#
# Prints, per run: exit code, requests sent and not sent, peak RSS.
# The bound to hold: 256 MiB.
#
#   flock /tmp/herd-machine.lock bash bench/rss.sh
#   SIZE=256MiB DURATION=10s bash bench/rss.sh     # a quicker run
#   BIG=/tmp/big.tape bash bench/rss.sh             # a tape written before
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
SIZE=${SIZE:-1GiB}
DURATION=${DURATION:-20s}
PORT=${PORT:-18081}
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d)
. "$(dirname "$0")/nginx.sh"
cleanup() {
	if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 200000 2>/dev/null || true

start_nginx off

go build -o "$work/herd" ./cmd/herd
# BIG names a tape bench/mixtape wrote earlier (-rate 100 -size SIZE), to
# spare the minutes of writing one under the machine lock.
if [ -n "${BIG:-}" ]; then
	ln -s "$(realpath "$BIG")" "$work/big.tape"
else
	echo "writing a $SIZE tape..." >&2
	/usr/bin/time -f "%e s, %M KiB" go run ./bench/mixtape -o "$work/big.tape" -rate 100 -size "$SIZE" 2>&1 | tail -1 >&2
fi
go run ./bench/mixtape -o "$work/small.tape" -rate 20 -duration 30s
"$work/herd" inspect "$work/big.tape" | sed -n 1,6p

# run NAME ARGS...: one replay; prints its exit code, counts and peak RSS.
run() {
	local name=$1
	shift
	local code=0
	/usr/bin/time -v -o "$work/time" "$work/herd" replay --target "http://127.0.0.1:$PORT" --abort-on off \
		--json "$work/r.json" --force "$@" >/dev/null 2>"$work/err" || code=$?
	local rss
	rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$work/time")
	local wall
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$work/time")
	if [ -s "$work/r.json" ] && [ "$code" != 2 ]; then
		python3 - "$work/r.json" "$name" "$code" "$rss" "$wall" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
s = f["steps"][0]
print("%-44s exit %s  sent %9d  not sent %-28s  planned %9d  peak RSS %7s MiB  wall %s  (window: %d requests, %d connections)" % (
    sys.argv[2], sys.argv[3], s["sent"], json.dumps(s.get("not_sent") or {}), s["planned"], sys.argv[4], sys.argv[5],
    f["window"]["requests"], f["window"]["connections"]))
PY
	else
		printf "%-44s exit %s  peak RSS %7s MiB  wall %s  %s\n" "$name" "$code" "$rss" "$wall" "$(grep -m1 -o 'scale.*' "$work/err" | cut -c1-140)"
	fi
	rm -f "$work/r.json"
}

for engine in loop goroutine; do
	run "1 GB tape, all, 100x for $DURATION, $engine" "$work/big.tape" --scale 100 --duration "$DURATION" --engine "$engine"
done
# The plan's estimate of connections open at once at 1000x, from herd's
# refusal of a bound of one connection.
peak=$("$work/herd" replay "$work/small.tape" --target "http://127.0.0.1:$PORT" --window peak:10s --scale 1000 \
	--max-conns 1 2>&1 | grep -o 'needs about [0-9]* connections' | grep -o '[0-9]*' || true)
[ -n "$peak" ] || peak=2000
for engine in loop goroutine; do
	run "10 s window, 1000x, --max-conns $peak, $engine" "$work/small.tape" --window peak:10s --scale 1000 --max-conns "$peak" --engine "$engine"
done
# Far beyond what one process sends: the requests that find every slot
# taken are not sent, and do not wait in memory.
for engine in loop goroutine; do
	run "10 s window, 10000x (herd far behind), $engine" "$work/small.tape" --window peak:10s --scale 10000 --engine "$engine"
done
run "10 s window, 100000x (refused)" "$work/small.tape" --window peak:10s --scale 100000
