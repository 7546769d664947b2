#!/usr/bin/env bash
# Capacity accuracy of herd ramp against the demo service, whose capacity
# is known analytically. Prints one table per pacing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
go build -o /tmp/herd-bench-capacity ./bench/capacity
/tmp/herd-bench-capacity
/tmp/herd-bench-capacity -strict
