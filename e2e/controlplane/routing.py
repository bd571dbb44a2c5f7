"""Where a request to an InferenceService goes, read from what the platform itself wrote: the
split Knative put into the KIngress (serverless mode), or the weights KServe put into the
HTTPRoute (standard mode), down to the storageUri each backend serves. The traffic driver routes
by this, never by the operator's status or by the InferenceService's spec.
"""
from __future__ import annotations

from pathlib import Path

import kubernetes

# KServe writes the model's storageUri onto every revision template / pod template it creates.
STORAGE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"
ISVC_LABEL = "serving.kserve.io/inferenceservice"


def kingress_split(kingress: dict, revisions: dict[str, dict], host: str | None = None) -> list[tuple[str, int]]:
    """[(storageUri, percent)] of the KIngress rule for `host`, by default the service itself (not
    its tagged `prev-`/`latest-` hosts); revisions by name."""
    name, namespace = kingress["metadata"]["name"], kingress["metadata"]["namespace"]
    for rule in kingress["spec"].get("rules", []):
        if (host or f"{name}.{namespace}") in rule.get("hosts", []):
            splits = rule["http"]["paths"][0]["splits"]
            return [(revisions[s["serviceName"]]["metadata"]["annotations"][STORAGE_URI], int(s["percent"]))
                    for s in splits if s["serviceName"] in revisions]
    return []


def httproute_split(route: dict, deployments: dict[str, dict]) -> list[tuple[str, int]]:
    """[(storageUri, percent)] of an HTTPRoute's first rule, its backend weights as percentages;
    deployments by name (KServe names each predictor's Service after its Deployment)."""
    refs = route["spec"]["rules"][0].get("backendRefs", [])
    total = sum(int(r.get("weight", 1)) for r in refs) or 1
    return [(deployments[r["name"]]["spec"]["template"]["metadata"]["annotations"][STORAGE_URI],
             round(100 * int(r.get("weight", 1)) / total)) for r in refs if r["name"] in deployments]


class PlatformRoutes:
    """Reads the current split of one InferenceService from the apiserver."""

    def __init__(self, kubeconfig: Path, isvc: str, namespace: str = "default"):
        client = kubernetes.config.new_client_from_config(str(kubeconfig))
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.isvc, self.namespace = isvc, namespace

    def _isvc(self) -> dict:
        return self.custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", self.namespace,
                                                        "inferenceservices", self.isvc)

    def split(self, host: str | None = None) -> list[tuple[str, int]]:
        """[] until the platform has routed anything. host: a tagged host's split instead of the
        service's (serverless only)."""
        try:
            mode = (self._isvc().get("status") or {}).get("deploymentMode")
            selector = f"{ISVC_LABEL}={self.isvc}"
            if mode == "Standard":
                route = self.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.namespace,
                                                                 "httproutes", self.isvc)
                deployments = self.apps.list_namespaced_deployment(self.namespace, label_selector=selector).items
                return httproute_split(route, {d.metadata.name: kubernetes.client.ApiClient().sanitize_for_serialization(d)
                                               for d in deployments})
            kingress = self.custom.get_namespaced_custom_object("networking.internal.knative.dev", "v1alpha1",
                                                                self.namespace, "ingresses", f"{self.isvc}-predictor")
            revisions = self.custom.list_namespaced_custom_object("serving.knative.dev", "v1", self.namespace,
                                                                  "revisions", label_selector=selector)["items"]
            return kingress_split(kingress, {r["metadata"]["name"]: r for r in revisions}, host)
        except kubernetes.client.ApiException as e:
            if e.status == 404:
                return []
            raise
