"""The objects we ship, as a cluster would receive them: kustomize output (real kubectl) and the
Helm chart rendered by Helm's own Go library (helm-python-sdk)."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import helm_python
import yaml

from e2e.controlplane.cluster import build

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelrollout"
ALL_ON = {"monitoring": {"podMonitor": {"enabled": True}, "serviceMonitor": {"enabled": True},
                         "dashboard": {"enabled": True}}}


def kubectl(*args: str) -> str:
    """The kubectl pinned with the control plane (e2e/controlplane/build.sh; cached)."""
    return subprocess.run([str(build() / "bin/kubectl"), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


@functools.cache
def kustomized(directory: str) -> tuple[dict, ...]:
    return tuple(d for d in yaml.safe_load_all(kubectl("kustomize", str(REPO / directory))) if d)


@functools.cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(str(CHART))


def rendered_chart(values: dict | None = None, namespace: str = "modelrollout-system") -> list[dict]:
    out = chart().render(values=values, name="mr", namespace=namespace)
    docs = [d for path, text in out.items() if not path.endswith("NOTES.txt") for d in yaml.safe_load_all(text) if d]
    return docs + [yaml.safe_load(c["data"]) for c in chart().crds]


def key(obj: dict) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def rbac_rules(docs) -> set[tuple[str, str, str]]:
    """The ClusterRole's and Roles' grants as (apiGroup, resource, verb)."""
    return {(g, r, v) for role in docs if role["kind"] in ("ClusterRole", "Role")
            for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def images(docs) -> set[str]:
    """Every container image the objects name (pod templates and KServe runtimes)."""
    out = set()
    for d in docs:
        spec = d.get("spec") or {}
        if d["kind"] != "ClusterServingRuntime":
            spec = (spec.get("template") or {}).get("spec") or spec
        out |= {c["image"] for c in spec.get("containers") or [] if "image" in c}
    return out
