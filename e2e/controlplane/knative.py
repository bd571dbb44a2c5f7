"""Knative Serving's controller, webhook and autoscaler, installed from Knative's own YAML (CRDs,
config maps, webhook configurations) and run as processes against the local apiserver.

What differs from a cluster install, and why:
- the webhook listens on its Service's ClusterIP at port 443 itself (the apiserver dials the
  ClusterIP; with no kube-proxy there is no 443 -> 8443 translation);
- config-deployment: the queue-proxy image is named (the YAML has a ko:// reference filled at
  release), under kind.local/ as every image here: Knative's default skips tag resolution for
  that registry, and the default is kept so an image it would resolve fails here as on kind;
- config-network selects Kourier's ingress class, as e2e/kind does; the ingress itself is stood in
  by network.py;
- config-autoscaler target-burst-capacity 0 keeps the activator (data plane, not run) out of the
  request path while a revision has pods.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.processes import free_port

from .kubernetes import Kubernetes
from .manifests import documents, dump, of_kind, with_data
from .process import Daemon, wait_for

NAMESPACE = "knative-serving"
QUEUE_IMAGE = "kind.local/knative/queue:v1.21"
AUTOSCALER_IP = "10.244.1.1"         # outside kwok's pod range, unroutable in the namespace
WEBHOOKS = ("webhook.serving.knative.dev", "validation.webhook.serving.knative.dev", "config.webhook.serving.knative.dev")


class Knative:
    def __init__(self, kube: Kubernetes, config: Path):
        self.kube, self.config = kube, Path(config)
        self.daemons: list[Daemon] = []

    def _crds(self) -> list[dict]:
        networking = self.config / "knative-networking"
        return of_kind(documents(self.config / "knative-serving/core/300-resources",
                                 *(networking / f for f in ("certificate.yaml", "domain-claim.yaml", "ingress.yaml",
                                                            "serverlessservice.yaml")),
                                 self.config / "knative-caching/image.yaml"), "CustomResourceDefinition")

    def _configmaps(self) -> list[dict]:
        overrides = {
            "config-deployment": {"queue-sidecar-image": QUEUE_IMAGE},
            "config-network": {"ingress-class": "kourier.ingress.networking.knative.dev"},
            "config-autoscaler": {"target-burst-capacity": "0"},
        }
        maps = of_kind(documents(self.config / "knative-serving/core/configmaps",
                                 self.config / "knative-networking/config-network.yaml"), "ConfigMap")
        return [with_data(m, **overrides.get(m["metadata"]["name"], {})) for m in maps]

    def install(self) -> None:
        core = self.config / "knative-serving/core"
        self.kube.apply(dump(of_kind(documents(core / "100-namespace.yaml"), "Namespace")))
        self.kube.apply(dump(self._crds()))
        self.kube.wait_established()
        self.kube.apply(dump(self._configmaps()))
        # The webhook's Service (for its ClusterIP), its certs Secret and its webhook configurations.
        self.kube.apply(dump(of_kind(documents(core / "deployments/webhook.yaml"), "Service")
                             + of_kind(documents(core / "webhooks"), "Secret", "MutatingWebhookConfiguration",
                                       "ValidatingWebhookConfiguration")))

    def _daemon(self, component: str, **env: str) -> Daemon:
        daemon = Daemon(f"knative-{component}", [self.kube.bin / f"knative-{component}", f"--kubeconfig={self.kube.kubeconfig}"],
                        self.kube.logs, {"SYSTEM_NAMESPACE": NAMESPACE, "POD_NAME": f"{component}-local",
                                         "CONFIG_LOGGING_NAME": "config-logging",
                                         "CONFIG_OBSERVABILITY_NAME": "config-observability",
                                         "PROFILING_PORT": str(free_port()), **env}).start()
        self.daemons.append(daemon)
        return daemon

    def start(self) -> "Knative":
        self._daemon("webhook", WEBHOOK_NAME="webhook", WEBHOOK_PORT="443")
        self._daemon("controller")
        # POD_IP goes into the Endpoints of the autoscaler's bucket Service, which refuse loopback
        # addresses; nothing dials it while one autoscaler owns every bucket.
        self._daemon("autoscaler", POD_IP=AUTOSCALER_IP)
        wait_for(self.webhooks_ready, 90, f"Knative's webhook to serve (logs in {self.kube.logs})", 0.5)
        return self

    def webhooks_ready(self) -> bool:
        """The webhook has written its CA into its configurations, and a dry-run create goes through it."""
        for d in self.daemons:
            d.check()
        for kind, name in (("mutatingwebhookconfiguration", WEBHOOKS[0]), ("validatingwebhookconfiguration", WEBHOOKS[1])):
            hooks = (self.kube.get(kind, name) or {}).get("webhooks", [])
            if not hooks or not all(h["clientConfig"].get("caBundle") for h in hooks):
                return False
        probe = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "webhook-probe"},
                 "spec": {"template": {"spec": {"containers": [{"image": "kind.local/probe:v1"}]}}}}
        return self.kube.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False).returncode == 0

    def stop(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.stop()
        self.daemons.clear()
