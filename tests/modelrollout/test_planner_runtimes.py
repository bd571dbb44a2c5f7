"""The planner when a rollout changes the runtime image tag or resources: what it records of each
version's runtime, and when it takes the InferenceService's template as stable's (builds.py)."""
import dataclasses
import datetime as dt

from modelrollout.builds import Runtime, retag
from modelrollout.planner import plan
from modelrollout.spec import parse_spec

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
V1 = "pvc://m/cancer/v1"
SERVING = ("v1", V1)
IMAGE = "kind.local/predictor:0.4.0"
POD = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
SEEN = Runtime(None, POD, IMAGE, POD)        # the user's template, and the revision KServe rolled out from it


def spec(**model):
    return parse_spec({"inferenceService": "cancer", "model": {"version": "v1-rt", "storageUri": V1, "runtimeVersion": "0.5.0", **model},
                    "strategy": {"steps": [{"weight": 50}, {"weight": 100}]},
                    "analysis": {"prometheus": {"url": "http://p"}}})


def test_a_first_look_records_stables_runtime_and_the_start_derives_the_candidates():
    p = plan(spec(), {}, SERVING, None, T0, runtime=SEEN)
    assert p.status["stableRuntime"] == SEEN.to_status()
    assert p.status["canaryRuntime"] == {"runtimeVersion": "0.5.0", "resources": POD, "image": retag(IMAGE, "0.5.0"),
                                         "podResources": POD}
    assert p.traffic.canary_build.image == retag(IMAGE, "0.5.0") and p.traffic.stable_build.image == IMAGE


def test_promotion_makes_the_candidates_runtime_stables():
    started = plan(spec(), {}, SERVING, None, T0, runtime=SEEN).status
    served = plan(spec(), started, SERVING, None, T0, applied=True, runtime=None).status
    promoted = plan(dataclasses.replace(spec(), promote="v1-rt"), served, SERVING, None, T0, runtime=None).status
    assert promoted["phase"] == "Promoted" and promoted["stableRuntime"] == started["canaryRuntime"]
    assert promoted["canaryRuntime"] is None


def test_another_runtime_version_for_the_same_candidate_restarts_the_rollout():
    started = plan(spec(), {}, SERVING, None, T0, runtime=SEEN).status
    again = plan(spec(runtimeVersion="0.6.0"), started, SERVING, None, T0, runtime=None)
    assert [e.reason for e in again.events] == ["RolloutRestarted", "RolloutStarted"]
    assert again.status["canaryRuntime"]["image"] == retag(IMAGE, "0.6.0")


def test_a_cancelled_candidates_template_is_never_taken_as_stables():
    # cancelled (spec back to v1): KServe's rollback leaves the candidate's runtimeVersion in the
    # template with canaryTrafficPercent 0, so the router reports no user's template (runtime None)
    started = plan(spec(), {}, SERVING, None, T0, runtime=SEEN).status
    cancelled = plan(dataclasses.replace(spec(), version="v1"), started, SERVING, None, T0, runtime=None).status
    assert cancelled["phase"] == "Idle" and cancelled["stableRuntime"] == SEEN.to_status()


def test_an_idle_template_edit_is_adopted():
    idle = plan(dataclasses.replace(spec(), version="v1"), {}, SERVING, None, T0, runtime=SEEN).status
    edited = Runtime(None, {**POD, "limits": {"cpu": "2", "memory": "2Gi"}})
    assert plan(dataclasses.replace(spec(), version="v1"), idle, SERVING, None, T0, runtime=edited).status[
        "stableRuntime"] == {"resources": edited.resources}
