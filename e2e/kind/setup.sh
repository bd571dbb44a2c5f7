#!/usr/bin/env bash
# Creates the kind cluster for the tier-4 suite and installs, in order: cert-manager, Knative
# Serving with Kourier, KServe (Serverless mode), a Prometheus scraping annotated pods, the
# ModelRollout CRD and operator from manifests/, the predictor runtime, and a PVC holding the
# model versions. Needs docker, kind and network access to the projects' release pages.
# Idempotent: re-running reuses the cluster. `e2e/kind/setup.sh --delete` removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/kind/versions.env
CLUSTER=modelrollout-e2e
KUBECTL=${KUBECTL:-kubectl}

if [ "${1:-}" = "--delete" ]; then kind delete cluster --name "$CLUSTER"; exit 0; fi
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --config e2e/kind/kind-config.yaml
$KUBECTL config use-context "kind-$CLUSTER"

# images built here and loaded into the nodes (nothing is pushed anywhere)
docker build -f predictor/Dockerfile --target e2e -t modelrollout/predictor:0.1.0 .    # with the fixture models its loader copies
docker build -f operator/Dockerfile -t modelrollout/operator:0.1.0 .
kind load docker-image --name "$CLUSTER" modelrollout/predictor:0.1.0 modelrollout/operator:0.1.0

$KUBECTL apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
$KUBECTL -n cert-manager rollout status deploy/cert-manager-webhook --timeout=300s

$KUBECTL apply -f "https://github.com/knative/serving/releases/download/${KNATIVE_VERSION}/serving-crds.yaml"
$KUBECTL apply -f "https://github.com/knative/serving/releases/download/${KNATIVE_VERSION}/serving-core.yaml"
$KUBECTL apply -f "https://github.com/knative/net-kourier/releases/download/${KNATIVE_VERSION}/kourier.yaml"
$KUBECTL patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
$KUBECTL patch configmap/config-domain -n knative-serving --type merge -p '{"data":{"example.com":""}}'
$KUBECTL -n knative-serving rollout status deploy/controller --timeout=300s

$KUBECTL apply --server-side -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve.yaml"
$KUBECTL -n kserve rollout status deploy/kserve-controller-manager --timeout=300s
$KUBECTL apply --server-side -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-cluster-resources.yaml"

sed "s#PROMETHEUS_IMAGE#${PROMETHEUS_IMAGE}#" e2e/kind/prometheus.yaml | $KUBECTL apply -f -
$KUBECTL -n monitoring rollout status deploy/prometheus --timeout=300s

$KUBECTL apply -k manifests/
$KUBECTL -n modelrollout-system rollout status deploy/modelrollout-operator --timeout=300s

$KUBECTL apply -f e2e/kind/models.yaml
$KUBECTL -n models wait --for=condition=complete job/load-models --timeout=300s
echo "kind cluster $CLUSTER ready"
