"""The ModelRollout's status as kstatus (sigs.k8s.io/cli-utils, what Flux's health checks and kpt
wait on) computes it, by the pinned library itself (kstatus/main.go, built by kstatus/build.sh),
on ModelRollouts in every phase as the operator's reconciler leaves them."""
import copy
import json
import subprocess
from functools import cache

import pytest

from tests.modelrollout.test_reconcile import T0, make, reconciler

from .phases import PHASES
from .rendered import REPO

BUILD = REPO / "tests/packaging/kstatus/build.sh"


@cache
def checker() -> str:
    return subprocess.run(["bash", str(BUILD)], check=True, capture_output=True, text=True).stdout.strip()


def kstatus(*objects: dict) -> list[dict]:
    out = subprocess.run([checker()], input=json.dumps(list(objects)), check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


EXPECTED = {
    "Idle": "Current", "Promoted, routed alone": "Current",
    "Promoted": "InProgress",                      # KServe does not route it alone yet
    "Evaluating": "InProgress", "Shadowing": "InProgress", "Progressing": "InProgress", "Holding": "InProgress",
    "Waiting": "InProgress",
    "Paused": "InProgress",                        # not done, not failed: waits for someone to resume it
    "RolledBack": "Failed", "Failed": "Failed",    # the spec's version will not serve unless someone acts
}


def test_every_phase_has_the_kstatus_a_gitops_tool_should_wait_on():
    assert set(EXPECTED) == set(PHASES)
    got = kstatus(*PHASES.values())
    assert {name: r["status"] for name, r in zip(PHASES, got)} == EXPECTED
    failed = dict(zip(PHASES, got))["RolledBack"]
    assert failed["message"] == PHASES["RolledBack"]["status"]["message"]     # the Stalled condition's


@pytest.mark.parametrize("name", ["Idle", "RolledBack"])
def test_a_spec_the_operator_has_not_read_is_in_progress(name):
    obj = copy.deepcopy(PHASES[name])
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
    assert kstatus(obj)[0]["status"] == "InProgress"


def test_a_refused_patch_is_failed_while_it_lasts():
    """RoutingFailed: the apiserver (an admission policy, say) refuses the operator's patch."""
    kube = make()
    kube.refuse = "admission webhook denied the request"
    r, _ = reconciler(kube, [T0])
    r("default", "cancer")
    result = kstatus(kube.rollout)[0]
    assert result["status"] == "Failed" and "denied" in result["message"], result
    kube.refuse = None
    r("default", "cancer")
    assert kstatus(kube.rollout)[0]["status"] == "InProgress"
