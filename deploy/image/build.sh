#!/usr/bin/env bash
# Build herd's container image as an OCI image layout, without a container
# daemon: a static binary with its version and commit set at link time, on
# an empty base, non-root. Push it with any OCI tool, e.g.
#   crane push herd-oci ghcr.io/ORG/herd:VERSION
#   skopeo copy oci:herd-oci docker://ghcr.io/ORG/herd:VERSION
#
#   bash deploy/image/build.sh [OUT_DIR]       # default ./herd-oci
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-herd-oci}")
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
commit=$(git -C "$root" rev-parse HEAD)
git -C "$root" diff --quiet HEAD -- || commit="$commit-dirty"
version=$(git -C "$root" describe --tags --exact-match 2>/dev/null || echo "devel")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pkg=github.com/herd-replay/herd/internal/version
(cd "$root" && CGO_ENABLED=0 GOOS=linux go build -trimpath -o "$tmp/herd" \
	-ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit" ./cmd/herd)
(cd "$root/deploy" && go run ./image -bin "$tmp/herd" -version "$version" -commit "$commit" -o "$out")
echo "wrote $out: herd $version ($commit)"
