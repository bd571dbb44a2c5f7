#!/usr/bin/env bash
# Builds the local control plane's upstream binaries from their pinned Go modules (go/*/go.mod,
# versions in e2e/versions.env) into a cache outside the work tree, and prints that directory (its bin/ and config/).
# The cache key is every input's content, so a warm run builds nothing and a version bump rebuilds.
# Beside bin/ it copies config/ of KServe, Knative (serving, networking, caching) and Gateway API
# from the same modules (CRDs, config maps, webhooks), so tests install the platform's own YAML.
#   kubernetes/: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd
#   kserve/:     KServe's manager (controller and webhooks)
#   knative/:    Knative Serving's controller, webhook and autoscaler
#   kwok/:       kwok (fake nodes, pods Running and Ready without a kubelet)
set -euo pipefail

# One function, parsed whole before it runs, so editing this file mid-build cannot derail a build.
main() {
  here=$(cd "$(dirname "$0")" && pwd)
  # shellcheck source=../versions.env
  source "$here/../versions.env"
  cache=${MODELROLLOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelrollout}
  key=$(cat "$here/build.sh" "$here/../versions.env" "$here"/go/*/go.mod "$here"/go/*/go.sum | sha256sum | cut -c1-16)
  root=$cache/controlplane-$key
  if [ -f "$root/.complete" ]; then echo "$root"; exit 0; fi

  # Each go.mod must require exactly the versions in versions.env (one source of truth).
  require() {  # module-dir module-path wanted-version
    local got
    got=$(cd "$here/go/$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2")
    if [ "$got" != "$3" ]; then
      echo "build.sh: go/$1/go.mod has $2 $got but e2e/versions.env says $3" >&2; exit 1
    fi
  }
  require kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
  require kubernetes go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  require kserve github.com/kserve/kserve "$KSERVE_VERSION"
  require knative knative.dev/serving "$KNATIVE_SERVING_VERSION"
  require kserve knative.dev/serving "$KNATIVE_SERVING_VERSION"   # the Knative API KServe was built against
  require kserve sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION"
  require kwok sigs.k8s.io/kwok "$KWOK_VERSION"

  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  k8s_version_flags="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION
    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  partial=$root.partial
  staging=$partial/bin
  rm -rf "$partial" && mkdir -p "$staging" "$partial/config"
  build() {  # module-dir ldflags package...
    local dir=$1 flags=$2; shift 2
    echo "build.sh: building $* ($dir)" >&2
    (cd "$here/go/$dir" && go build -trimpath -ldflags "-s -w $flags" -o "$staging/" "$@") >&2
  }
  build kubernetes "$k8s_version_flags" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3
  mv "$staging/server" "$staging/etcd"   # go names go.etcd.io/etcd/server/v3 "server"
  build kserve "" github.com/kserve/kserve/cmd/manager
  mv "$staging/manager" "$staging/kserve-manager"
  for cmd in controller webhook autoscaler; do
    build knative "" "knative.dev/serving/cmd/$cmd"
    mv "$staging/$cmd" "$staging/knative-$cmd"
  done
  build kwok "" sigs.k8s.io/kwok/cmd/kwok
  for pair in kserve:github.com/kserve/kserve=kserve kserve:sigs.k8s.io/gateway-api=gateway-api \
      knative:knative.dev/serving=knative-serving knative:knative.dev/networking=knative-networking \
      knative:knative.dev/caching=knative-caching; do
    module=${pair#*:}; module=${module%%=*}
    dir=$(cd "$here/go/${pair%%:*}" && go list -m -f '{{.Dir}}' "$module")
    cp -r "$dir/config" "$partial/config/${pair##*=}" && chmod -R u+w "$partial/config/${pair##*=}"
  done
  touch "$partial/.complete"
  rm -rf "$root" && mv "$partial" "$root"
  echo "$root"
}

main "$@"
