"""The reconciler's shadow step: stable's mirror file is written once both versions have
addresses, the counts are judged each interval, and the file goes when the step ends."""
import copy
import datetime as dt

import yaml

from modelrollout.analysis import Measurements
from modelrollout.metrics import OperatorMetrics
from modelrollout.reconcile import Reconciler
from modelrollout.shadow import MIRROR_CONFIG_MAP, ShadowSample

from .test_reconcile import HEALTHY, T0, kserve_reports, make

SHADOW = {"fraction": 0.25, "minPairs": 50, "maxDisagreement": 0.05, "duration": "10m"}
KEY = ("default", MIRROR_CONFIG_MAP)


def shadowed(**spec):
    kube = make(**spec)
    kube.rollout["spec"]["strategy"]["shadow"] = SHADOW
    kube.isvc["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] = "true"
    return kube


def addresses_shown(kube):
    kserve_reports(kube, 0)
    for target in kube.isvc["status"]["components"]["predictor"]["traffic"]:
        target["url"] = f"http://{target['tag']}-cancer-predictor.default.svc.cluster.local"


def reconciler(kube, now, counts):
    asked = []

    def shadow(spec, namespace, stable, window):
        asked.append((namespace, stable, window))
        return counts[0]
    return Reconciler(kube, lambda *a: Measurements(HEALTHY, HEALTHY), OperatorMetrics(), shadow=shadow,
                      clock=lambda: now[0]), asked


def mirroring(counts=None):
    """A shadowed rollout whose mirror is on: (kube, clock, reconciler, counts the mirror reports)."""
    kube, now, counts = shadowed(), [T0], counts or [sample(0, 0)]
    r, _ = reconciler(kube, now, counts)
    r("default", "cancer")
    addresses_shown(kube)
    r("default", "cancer")
    return kube, now, r, counts


def sample(pairs, disagreements):
    """What the mirror counted: one row per mirrored request."""
    return ShadowSample({"probabilities": pairs}, {"probabilities": disagreements}, pairs, 0.0), None


def test_the_mirror_file_is_written_when_both_versions_have_addresses_and_removed_when_the_step_passes():
    kube, now, counts = shadowed(), [T0], [sample(0, 0)]
    r, asked = reconciler(kube, now, counts)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Shadowing" and kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert KEY not in kube.config_maps                        # no address for the candidate yet
    addresses_shown(kube)
    now[0] += dt.timedelta(seconds=10)
    r("default", "cancer")
    written = yaml.safe_load(kube.config_maps[KEY]["cancer.yaml"])
    assert written == {"url": "http://latest-cancer-predictor.default.svc.cluster.local", "fraction": 0.25,
                       "sourceVersion": "v1"}
    status = kube.rollout["status"]
    assert status["mirror"] == written and status["shadowStartedAt"] == "2026-11-22T12:00:10Z"
    assert kube.log.index(("configmap", "cancer.yaml", True)) < len(kube.log) - 1     # before the status recording it
    r("default", "cancer")
    assert asked == [] and kube.log.count(("configmap", "cancer.yaml", True)) == 1     # written once; not due yet
    counts[0] = sample(400, 2)
    now[0] += dt.timedelta(seconds=60)
    r("default", "cancer")
    namespace, stable, window = asked[0]
    assert (namespace, stable) == ("default", "v1") and window.since == window.start == (T0 + dt.timedelta(seconds=10)).timestamp()
    status = kube.rollout["status"]
    assert status["phase"] == "Progressing" and status["shadow"]["verdict"] == "Pass" and status["canaryWeight"] == 5
    assert kube.config_maps[KEY] == {} and status.get("mirror") is None                 # stable stops mirroring
    assert kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 5


def test_a_candidate_that_disagrees_is_rolled_back_and_the_mirror_removed():
    kube, now, r, counts = mirroring()
    counts[0] = sample(400, 160)
    now[0] += dt.timedelta(seconds=60)
    r("default", "cancer")
    status = kube.rollout["status"]
    assert status["phase"] == "RolledBack" and status["shadow"]["verdict"] == "Fail"
    assert "cancer.yaml" not in kube.config_maps[KEY] and ("event", "ShadowFailed") in kube.log


def test_a_refused_mirror_write_is_reported_once_and_tried_again():
    kube, now, counts = shadowed(), [T0], [sample(0, 0)]
    r, _ = reconciler(kube, now, counts)
    r("default", "cancer")
    addresses_shown(kube)
    kube.refuse_config_maps = "403 Forbidden: configmaps is forbidden"
    r("default", "cancer")
    r("default", "cancer")
    status = kube.rollout["status"]
    assert "403 Forbidden" in status["mirrorError"] and status.get("mirror") is None
    assert kube.log.count(("event", "MirrorFailed")) == 1
    kube.refuse_config_maps = None
    r("default", "cancer")
    assert kube.rollout["status"].get("mirrorError") is None and "cancer.yaml" in kube.config_maps[KEY]


def test_deleting_the_rollout_while_shadowing_removes_the_mirror():
    kube, _, r, _ = mirroring()
    assert "cancer.yaml" in kube.config_maps[KEY]
    r.revert(copy.deepcopy(kube.rollout))
    assert kube.config_maps[KEY] == {}


def test_a_rollout_asking_for_the_shadow_step_fails_until_the_service_has_tag_routing():
    kube, now, counts = shadowed(), [T0], [sample(0, 0)]
    del kube.isvc["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"]
    r, _ = reconciler(kube, now, counts)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Failed" and kube.log[-1] == ("event", "ShadowNeedsTagRouting")
    assert "spec.strategy.shadow needs" in kube.rollout["status"]["message"] and KEY not in kube.config_maps
