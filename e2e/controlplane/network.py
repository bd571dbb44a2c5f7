"""The stand-in for the network data plane's controllers: what Kourier (for Knative's KIngress) and
a Gateway API implementation (for KServe's HTTPRoutes) would report once they had programmed
their proxies. No proxy runs here; the traffic driver routes requests by the very splits these
objects carry. Nothing else is touched: the splits are Knative's and KServe's own.
"""
from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import kubernetes
import urllib3

from .kubernetes import condition_true

KINGRESS = ("networking.internal.knative.dev", "v1alpha1", "ingresses")
HTTPROUTE = ("gateway.networking.k8s.io", "v1", "httproutes")
CONTROLLER = "modelrollout.invalid/loopback-gateway"
LOAD_BALANCER = {"ingress": [{"domainInternal": "kourier.kourier-system.svc.cluster.local"}]}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, generation: int) -> dict:
    return {"type": kind, "status": "True", "reason": kind, "message": "", "lastTransitionTime": _now(),
            "observedGeneration": generation}


def ingress_status(ingress: dict) -> dict | None:
    """The status Kourier writes once it serves a KIngress's current generation; None if already so."""
    generation = ingress["metadata"]["generation"]
    status = ingress.get("status") or {}
    if status.get("observedGeneration") == generation and condition_true(ingress):
        return None
    conditions = [{k: v for k, v in _condition(t, generation).items() if k != "observedGeneration"}
                  for t in ("LoadBalancerReady", "NetworkConfigured", "Ready")]
    return {"observedGeneration": generation, "conditions": conditions,
            "publicLoadBalancer": LOAD_BALANCER, "privateLoadBalancer": LOAD_BALANCER}


def httproute_status(route: dict) -> dict | None:
    """The status a Gateway API implementation writes once it accepts a route; None if already so."""
    generation = route["metadata"]["generation"]
    parents = route["spec"].get("parentRefs") or []
    current = (route.get("status") or {}).get("parents") or []
    if len(current) == len(parents) and all(
            c.get("observedGeneration") == generation for p in current for c in p.get("conditions", [])):
        return None
    return {"parents": [{"parentRef": ref, "controllerName": CONTROLLER,
                         "conditions": [_condition("Accepted", generation), _condition("ResolvedRefs", generation)]}
                        for ref in parents]}


class NetworkStandIn:
    """Polls KIngresses and HTTPRoutes and marks each generation ready, every `period` seconds."""

    def __init__(self, kubeconfig: Path, period: float = 0.3):
        self.api = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(str(kubeconfig)))
        self.period = period
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="network-stand-in", daemon=True)

    def _mark(self, resource: tuple[str, str, str], status_of) -> None:
        group, version, plural = resource
        try:
            items = self.api.list_cluster_custom_object(group, version, plural)["items"]
        except kubernetes.client.ApiException as e:
            if e.status == 404:     # its CRD is not installed (yet)
                return
            raise
        for obj in items:
            status = status_of(obj)
            if status is not None:
                meta = obj["metadata"]
                self.api.patch_namespaced_custom_object_status(group, version, meta["namespace"], plural, meta["name"],
                                                               {"status": status})

    def _run(self) -> None:
        while not self.stopped.wait(self.period):
            try:
                self._mark(KINGRESS, ingress_status)
                self._mark(HTTPROUTE, httproute_status)
            except (kubernetes.client.ApiException, urllib3.exceptions.HTTPError, OSError):
                continue        # a conflict or a restart of the apiserver: the next round retries

    def start(self) -> "NetworkStandIn":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
