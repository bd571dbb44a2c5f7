#!/usr/bin/env bash
# Builds Knative Serving's queue-proxy (knative.dev/serving/cmd/queue, the sidecar Knative puts in
# every serverless pod) from go/knative's pinned module into a cache outside the work tree, and
# prints the binary's path. Apart from build.sh so that adding it did not rebuild the control plane;
# the cache key is its inputs' content.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${MODELROLLOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelrollout}
key=$(cat "$here/build_queue_proxy.sh" "$here/../versions.env" "$here/go/knative/go.mod" "$here/go/knative/go.sum" | sha256sum | cut -c1-16)
out=$cache/queue-proxy-$key
if [ ! -x "$out/queue" ]; then
  echo "build_queue_proxy.sh: building knative.dev/serving/cmd/queue" >&2
  rm -rf "$out.partial" && mkdir -p "$out.partial"
  (cd "$here/go/knative" && go build -trimpath -ldflags "-s -w" -o "$out.partial/" knative.dev/serving/cmd/queue) >&2
  rm -rf "$out" && mv "$out.partial" "$out"
fi
echo "$out/queue"
