"""docs/gitops.md's Argo CD `ignoreDifferences` recipe covers every InferenceService field the operator
writes: the fields are collected from what the operator's own code patches over whole rollouts
(the reconciler in serverless mode, promoted, rolled back and aborted; the standard-mode router)."""
import datetime as dt
import re

import yaml

from modelrollout.adapters.autoscaling import stable_scale
from modelrollout.adapters.isvc import merge_patch
from modelrollout.adapters.standard import StandardRouter
from modelrollout.planner import Traffic
from modelrollout.spec import AutoscalingSpec
from tests.modelrollout.test_reconcile import T0, kserve_reports, make, reconciler

from .rendered import REPO


def recipe() -> tuple[list[str], list[str]]:
    """(the YAML block's jsonPointers, the pointers the prose before it lists)."""
    readme = (REPO / "docs/gitops.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "ignoreDifferences" in b)
    entry = yaml.safe_load(block)["spec"]["ignoreDifferences"][0]
    assert (entry["group"], entry["kind"]) == ("serving.kserve.io", "InferenceService")
    prose = readme[:readme.index(block)].rsplit("and the GitOps tool must leave them alone", 1)[1]
    return entry["jsonPointers"], re.findall(r"`(/spec/[^`]+)`", prose)


def changed(before, after, at="") -> set[str]:
    """The JSON pointers of what differs (a list is one value, as a pointer names it)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return {p for k in before.keys() | after.keys() for p in changed(before.get(k), after.get(k), f"{at}/{k}")}
    return set() if before == after else {at}


class Recording:
    """The reconciler's in-memory Kubernetes, keeping every InferenceService it was patched into."""

    def __init__(self, kube):
        self.kube, self.specs = kube, [kube.isvc["spec"]]
        patch = kube.patch_isvc

        def recorded(namespace, name, body):
            out = patch(namespace, name, body)
            self.specs.append(kube.isvc["spec"])
            return out
        kube.patch_isvc = recorded

    def written(self) -> set[str]:
        return {p for a, b in zip(self.specs, self.specs[1:]) for p in changed(a, b, "/spec")}


def serverless(ending: dict, **model) -> set[str]:
    kube, clock = make(), [T0]
    kube.rollout["spec"]["model"].update(model)
    seen = Recording(kube)
    r, _ = reconciler(kube, clock)
    r("default", "cancer")
    kserve_reports(kube, 0)
    r("default", "cancer")
    kserve_reports(kube, 5)
    r("default", "cancer")
    clock[0] += dt.timedelta(minutes=3)
    r("default", "cancer")                                   # analysed, the next step
    kube.rollout["spec"].update(ending)
    kube.rollout["metadata"]["generation"] += 1
    clock[0] += dt.timedelta(seconds=5)
    r("default", "cancer")
    return seen.written()


def standard() -> set[str]:
    scale = stable_scale(AutoscalingSpec(min_replicas=2, max_replicas=10, metric="cpu", target=70))
    isvc = {"metadata": {"name": "cancer"}, "spec": {"predictor": {"model": {"modelFormat": {"name": "pytorch"},
                                                                             "storageUri": "s3://m/v1"}}}}
    out = set()
    for path in ([Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 25), Traffic("v2", "s3://m/v2")],
                 [Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 25), Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 0)]):
        obj = isvc
        for traffic in path:
            after = merge_patch(obj, StandardRouter().patch(obj, traffic, scale, {}))
            out |= changed(obj["spec"], after["spec"], "/spec")
            obj = after
    return out


def all_written() -> set[str]:
    new_runtime = {"runtimeVersion": "0.5.0", "resources": {"limits": {"memory": "2Gi"}}}
    return (serverless({"promote": "v2"}) | serverless({"abort": True}) | serverless({"promote": "v2"}, **new_runtime)
            | standard())


def covered(path: str, pointers: list[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in pointers)


def test_the_recipe_ignores_every_field_the_operator_writes():
    pointers, prose = recipe()
    assert sorted(prose) == sorted(pointers)                 # the prose says what its YAML does
    written = all_written()
    assert "/spec/predictor/canaryTrafficPercent" in written and "/spec/canary" in written    # it saw both modes
    assert {p for p in written if not covered(p, pointers)} == set()


def test_the_recipe_ignores_nothing_the_operator_leaves_alone():
    """An ignored field the operator never writes would hide a user's own drift from Argo CD."""
    pointers, _ = recipe()
    written = all_written()
    assert [p for p in pointers if not any(covered(w, [p]) for w in written)] == []
