#!/usr/bin/env bash
# Offline capture throughput: MB/s of pcap and packets/s on one core
# (GOMAXPROCS=1), and peak RSS, for the largest shared capture and for a
# generated capture of keep-alive HTTP (512 MiB by default, written to a
# temporary directory and removed afterwards). Each input is captured RUNS
# times; the median run is printed.
#
#   bash bench/capture.sh             # RUNS=5 SIZE=512MiB
#   RUNS=3 SIZE=1GiB bash bench/capture.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
RUNS=${RUNS:-5}
SIZE=${SIZE:-512MiB}
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/herd" ./cmd/herd
go run ./bench/genpcap -size "$SIZE" -o "$tmp/keepalive.pcap"

inputs=()
shared=../shared/testdata/pcaps/http-browsing-338req-large.pcap
if [ -f "$shared" ]; then inputs+=("$shared"); else echo "bench: $shared not found, skipping it" >&2; fi
inputs+=("$tmp/keepalive.pcap")

printf '%-36s %10s %10s %12s %10s %8s\n' input "size MB" "MB/s" "packets/s" "RSS MiB" "wall s"
for in in "${inputs[@]}"; do
	size=$(stat -c %s "$in")
	rows=()
	for _ in $(seq "$RUNS"); do
		start=$EPOCHREALTIME
		GOMAXPROCS=1 /usr/bin/time -v "$tmp/herd" capture --pcap "$in" -o "$tmp/out.tape" --force 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
		end=$EPOCHREALTIME
		wall=$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')
		rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/err")
		pkts=$(sed -n 's/.* from \([0-9]*\) packets.*/\1/p' "$tmp/err")
		rows+=("$wall $rss $pkts")
	done
	# Median by wall time.
	med=$(printf '%s\n' "${rows[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
	read -r wall rss pkts <<<"$med"
	awk -v name="$(basename "$in")" -v size="$size" -v wall="$wall" -v rss="$rss" -v pkts="$pkts" 'BEGIN {
		printf "%-36s %10.1f %10.0f %12.0f %10.1f %8.3f\n", name, size/1e6, size/1e6/wall, pkts/wall, rss/1024, wall }'
done
echo "(wall time of the whole process, start-up included: small inputs read slower than the engine runs;"
echo " go test ./capture -run XXX -bench Capture measures the engine alone)"
