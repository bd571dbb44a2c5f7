"""KServe's controller manager, with its webhooks, installed from KServe's own YAML and run as a
process against the local apiserver; the Gateway API CRDs beside it (standard mode splits traffic
on HTTPRoutes).

What differs from a cluster install, and why:
- the webhook configurations reach the manager by URL on 127.0.0.1, with a CA of our own in their
  caBundle (cert-manager's part);
- inferenceservice-config's ingress: no Istio (`disableIstioVirtualHost`, as with Kourier in
  e2e/kind), and the Gateway API on, so standard-mode canaries get HTTPRoutes.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.processes import free_port

from .kubernetes import Kubernetes
from .manifests import documents, dump, of_kind, webhooks_by_url, with_data
from .process import Daemon

NAMESPACE = "kserve"
INGRESS = {"enableGatewayApi": True, "kserveIngressGateway": "kserve/kserve-ingress-gateway",
           "ingressGateway": "knative-serving/knative-ingress-gateway", "ingressDomain": "example.com",
           "ingressClassName": "kourier", "domainTemplate": "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}",
           "urlScheme": "http", "disableIstioVirtualHost": True, "disableIngressCreation": False}


class KServe:
    def __init__(self, kube: Kubernetes, config: Path):
        self.kube, self.config = kube, Path(config)
        self.webhook_port, self.probe_port = free_port(), free_port()
        self.daemon: Daemon | None = None

    def install(self) -> None:
        kserve = self.config / "kserve"
        self.kube.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))
        crds = of_kind(documents(kserve / "crd/full", self.config / "gateway-api/crd/standard"), "CustomResourceDefinition")
        crds = [c for c in crds if c["spec"].get("group")]      # not the kustomize patches beside them
        self.kube.apply(dump(crds))
        self.kube.wait_established()
        configmap = of_kind(documents(kserve / "configmap/inferenceservice.yaml"), "ConfigMap")[0]
        self.kube.apply(dump([with_data(configmap, ingress=json.dumps(INGRESS))]))
        hooks = of_kind(documents(kserve / "webhook/manifests.yaml"), "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
        self.kube.apply(dump(webhooks_by_url(h, f"https://127.0.0.1:{self.webhook_port}", self.kube.pki.ca_pem) for h in hooks))

    def start(self) -> "KServe":
        # controller-runtime serves webhooks with the cert it finds in $TMPDIR/k8s-webhook-server/serving-certs.
        tmp = self.kube.dir / "kserve-tmp"
        certs = tmp / "k8s-webhook-server/serving-certs"
        certs.mkdir(parents=True, exist_ok=True)
        crt, key = self.kube.pki.issue("kserve-webhook", "kserve-webhook-server", hosts=("127.0.0.1", "localhost"))
        (certs / "tls.crt").write_bytes(crt.read_bytes())
        (certs / "tls.key").write_bytes(key.read_bytes())
        self.daemon = Daemon("kserve-manager", [
            self.kube.bin / "kserve-manager", f"--kubeconfig={self.kube.kubeconfig}", f"--webhook-port={self.webhook_port}",
            f"--metrics-addr=127.0.0.1:{free_port()}", f"--health-probe-addr=127.0.0.1:{self.probe_port}"],
            self.kube.logs, {"POD_NAMESPACE": NAMESPACE, "TMPDIR": str(tmp)}).start()
        self.daemon.wait_healthy(f"http://127.0.0.1:{self.probe_port}/readyz", timeout=90)
        return self

    def stop(self) -> None:
        if self.daemon:
            self.daemon.stop()
