#!/usr/bin/env bash
# herd import of a large input in each format (1 GiB by default, generated
# into a temporary directory and removed afterwards): input MB/s and peak
# RSS of the whole process (/usr/bin/time -v), on one core (GOMAXPROCS=1).
# Peak RSS far below the input's size shows the importers stream. Each
# format is imported RUNS times; the median run is printed.
#
#   bash bench/import.sh                 # RUNS=3 SIZE=1GiB
#   RUNS=1 SIZE=256MiB bash bench/import.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
RUNS=${RUNS:-3}
SIZE=${SIZE:-1GiB}
FORMATS=${FORMATS:-"gor har clf alb"}
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/herd" ./cmd/herd
go build -o "$tmp/genimport" ./bench/genimport

printf '%-8s %10s %12s %10s %10s %10s\n' format "input MB" exchanges "MB/s" "RSS MiB" "wall s"
for f in $FORMATS; do
	"$tmp/genimport" -format "$f" -size "$SIZE" -o "$tmp/in.$f"
	size=$(stat -c %s "$tmp/in.$f")
	rows=()
	for _ in $(seq "$RUNS"); do
		rm -f "$tmp/out.tape"
		start=$EPOCHREALTIME
		GOMAXPROCS=1 /usr/bin/time -v "$tmp/herd" import "$tmp/in.$f" -o "$tmp/out.tape" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
		end=$EPOCHREALTIME
		wall=$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')
		rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/err")
		n=$(sed -n 's/^herd: imported \([0-9]*\) exchanges.*/\1/p' "$tmp/err")
		rows+=("$wall $rss $n")
	done
	med=$(printf '%s\n' "${rows[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
	read -r wall rss n <<<"$med"
	awk -v f="$f" -v size="$size" -v wall="$wall" -v rss="$rss" -v n="$n" 'BEGIN {
		printf "%-8s %10.0f %12d %10.1f %10.1f %10.1f\n", f, size/1e6, n, size/1e6/wall, rss/1024, wall }'
	rm -f "$tmp/in.$f"
done
