#!/usr/bin/env bash
# Render a results file as the HTML report and photograph it in headless
# Chromium, to look at the report as a person would before shipping a
# change to it. Nothing is fetched: the page is self-contained and
# Chromium runs with its background networking off.
#
#   bash bench/report-screenshot.sh                              # testdata/results/demo-ramp.json to report.png
#   bash bench/report-screenshot.sh run.json out.png             # any results file
#   WIDTH=900 HEIGHT=4000 bash bench/report-screenshot.sh run.json narrow.png
#   bash bench/report-screenshot.sh compare base.json cand.json cmp.png  # herd report compare --html
#
# Needs chromium (Debian: apt-get install chromium).
set -euo pipefail
# Paths given are the caller's: make them absolute before moving to the
# repository's root, where the default input is.
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
base=
if [ "${1:-}" = compare ]; then
	[ $# -ge 3 ] || { echo "usage: report-screenshot.sh compare BASE.json CANDIDATE.json [out.png]" >&2; exit 2; }
	base=$(abs "$2")
	shift 2
fi
in=${1:+$(abs "$1")}
out=$(abs "${2:-report.png}")
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
in=${in:-testdata/results/demo-ramp.json}
WIDTH=${WIDTH:-1400}
HEIGHT=${HEIGHT:-3000}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "report-screenshot: chromium is needed (apt-get install chromium)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/herd" ./cmd/herd
if [ -n "$base" ]; then
	# Exit 3 is a regression found: the page is written all the same.
	rc=0
	"$tmp/herd" report compare "$base" "$in" --html "$tmp/report.html" >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "report-screenshot: herd report compare exited $rc" >&2; exit 1; }
	in="$base vs $in"
else
	"$tmp/herd" report "$in" --format html -o "$tmp/report.html"
fi
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
	--disable-component-update --disable-sync --no-first-run --hide-scrollbars \
	--user-data-dir="$tmp/profile" --window-size="$WIDTH,$HEIGHT" \
	--screenshot="$out" "file://$tmp/report.html" 2>"$tmp/chromium.log" ||
	{ cat "$tmp/chromium.log" >&2; exit 1; }
echo "report-screenshot: $in -> $out (${WIDTH}x${HEIGHT})"
