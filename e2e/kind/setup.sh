#!/usr/bin/env bash
# Creates the kind cluster for the tier-4 suite and installs, in order: cert-manager, Knative
# Serving with Kourier, KServe (Serverless mode, Kourier as its network layer), a Prometheus
# scraping annotated pods, ModelRollout from e2e/kind/overlay (manifests/ with the locally built
# kind.local/ images), and a PVC holding the model versions. Every step waits for what the next
# one needs (CRDs Established, webhooks' Deployments Available), as a fresh cluster requires.
# Needs docker, kind and network access to the projects' release pages.
# Idempotent: re-running reuses the cluster. `e2e/kind/setup.sh --delete` removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/kind/versions.env
CLUSTER=modelrollout-e2e
KUBECTL=${KUBECTL:-kubectl}
RELEASES=https://github.com

if [ "${1:-}" = "--delete" ]; then kind delete cluster --name "$CLUSTER"; exit 0; fi
available() { $KUBECTL -n "$1" wait --for=condition=Available deploy --all --timeout=300s; }
established() { $KUBECTL wait --for=condition=Established crd --all --timeout=120s; }

# the node image: exactly KUBERNETES_VERSION, from its release binaries (packaging review M2)
docker image inspect "$KIND_NODE_IMAGE" >/dev/null 2>&1 \
  || kind build node-image --type release "$KUBERNETES_VERSION" --image "$KIND_NODE_IMAGE"
kind get clusters | grep -qx "$CLUSTER" \
  || kind create cluster --config e2e/kind/kind-config.yaml --image "$KIND_NODE_IMAGE"
$KUBECTL config use-context "kind-$CLUSTER"

# images built here and loaded into the nodes under kind.local/, which Knative does not resolve
# to a digest (the shipped ghcr.io/ names would be looked up in that registry: review C2)
docker build -f predictor/Dockerfile --target e2e -t kind.local/modelrollout/predictor:0.1.0 .   # with the fixture models
docker build -f operator/Dockerfile -t kind.local/modelrollout/operator:0.1.0 .
kind load docker-image --name "$CLUSTER" kind.local/modelrollout/predictor:0.1.0 kind.local/modelrollout/operator:0.1.0

$KUBECTL apply -f "$RELEASES/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
available cert-manager

$KUBECTL apply -f "$RELEASES/knative/serving/releases/download/${KNATIVE_VERSION}/serving-crds.yaml"
established
$KUBECTL apply -f "$RELEASES/knative/serving/releases/download/${KNATIVE_VERSION}/serving-core.yaml"
$KUBECTL apply -f "$RELEASES/knative/net-kourier/releases/download/${KNATIVE_VERSION}/kourier.yaml"
# Knative's config webhook (failurePolicy Fail) validates these ConfigMaps: patch once it serves (M1)
available knative-serving
available kourier-system
$KUBECTL patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
$KUBECTL patch configmap/config-domain -n knative-serving --type merge -p '{"data":{"example.com":""}}'

# KServe's release kserve.yaml has no Namespace and needs its CRDs first (C3); its cluster
# resources (LLM configs behind a second webhook, M4) are not needed: the suite names its runtime
$KUBECTL create namespace kserve --dry-run=client -o yaml | $KUBECTL apply -f -
$KUBECTL apply --server-side -f "$RELEASES/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-crds.yaml"
established
$KUBECTL apply --server-side -f "$RELEASES/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve.yaml"
available kserve
# no Istio: the InferenceService's URL is Knative's route host, which Kourier serves (C5)
ingress=$($KUBECTL -n kserve get configmap inferenceservice-config -o jsonpath='{.data.ingress}')
ingress=$(printf '%s' "$ingress" | python3 -c 'import json,sys; d=json.load(sys.stdin); d["disableIstioVirtualHost"]=True; print(json.dumps(d))')
$KUBECTL -n kserve patch configmap inferenceservice-config --type merge \
  -p "$(python3 -c 'import json,sys; print(json.dumps({"data": {"ingress": sys.argv[1]}}))' "$ingress")"
$KUBECTL -n kserve rollout restart deploy/kserve-controller-manager
available kserve

sed "s#PROMETHEUS_IMAGE#${PROMETHEUS_IMAGE}#" e2e/kind/prometheus.yaml | $KUBECTL apply -f -
available monitoring

$KUBECTL apply -k e2e/kind/overlay
available modelrollout-system

$KUBECTL apply -f e2e/kind/models.yaml
$KUBECTL -n models wait --for=condition=complete job/load-models --timeout=300s
echo "kind cluster $CLUSTER ready"
