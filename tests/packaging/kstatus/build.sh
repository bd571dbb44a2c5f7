#!/usr/bin/env bash
# Builds the kstatus checker (main.go over sigs.k8s.io/cli-utils' kstatus, pinned in go.mod) into
# a cache outside the work tree and prints the binary's path; the cache key is its inputs' content.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${MODELROLLOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelrollout}
key=$(cat "$here/build.sh" "$here/main.go" "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)
out=$cache/kstatus-$key
if [ ! -x "$out/kstatus" ]; then
  echo "kstatus/build.sh: building the kstatus checker" >&2
  rm -rf "$out.partial" && mkdir -p "$out.partial"
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$out.partial/kstatus" .) >&2
  rm -rf "$out" && mv "$out.partial" "$out"
fi
echo "$out/kstatus"
