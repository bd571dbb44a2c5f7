"""Versions served by a V2 server that is not this project's (plain_v2.py: no predictor_* series),
each behind a real Knative queue-proxy as the revision KServe will make for it (e2e/controlplane/
pod.py): what a KServe user on another runtime runs, and what the `knative` provider reads.

The pods are started before the rollout, so each is labelled with the revision name Knative will
give it in a fresh namespace (cancer-predictor-00001 for the first template, -00002 for the
candidate's); scenarios check that KServe's status names the same.
"""
from __future__ import annotations

import sys
from pathlib import Path

from e2e.controlplane.pod import USER_PORT, QueueProxiedPod

from .stack import uri_of

REVISION_LABEL = "serving_knative_dev_revision"    # a PodMonitor's podTargetLabels [serving.knative.dev/revision]
SERVER = [sys.executable, "-m", "e2e.localstack.plain_v2", "--port", str(USER_PORT), "--model", "cancer"]


class RuntimePods:
    def __init__(self, namespace: str, versions: dict[str, tuple[str, list[str]]], workdir: Path):
        """versions: version -> (its revision's name, plain_v2's arguments such as --fail-every 5)."""
        self.namespace = namespace
        self.pods = {v: QueueProxiedPod(SERVER + args, namespace, revision, workdir) for v, (revision, args) in versions.items()}
        self.processes: dict = {}               # no predictor processes (Rollout.report lists theirs)
        self.shadow_files: list[Path] = []      # plain_v2 has no mirror

    def __enter__(self) -> "RuntimePods":
        for pod in self.pods.values():
            pod.start()
        return self

    def backends(self) -> dict[str, tuple[str, str]]:
        return {uri_of(v): (v, pod.serving_address) for v, pod in self.pods.items()}

    def targets(self) -> list[tuple[str, dict[str, str]]]:
        """Scrape targets as Kubernetes service discovery labels a pod: its namespace and revision."""
        return [(pod.metrics_target, {"namespace": self.namespace, REVISION_LABEL: pod.revision}) for pod in self.pods.values()]

    def __exit__(self, *exc) -> None:
        for pod in self.pods.values():
            pod.stop()
