"""What must hold before the operator writes anything into an InferenceService. Pure.

Each check returns (reason, message) naming the problem, or None; reconcile.py turns a refusal
into phase Failed with that reason (Waiting for those KServe resolves by itself), and writes
nothing into the InferenceService.
"""

from __future__ import annotations

from .adapters.isvc import TAG_ROUTING
from .spec import RolloutSpec
from .status import Status

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# KServe's names for its deployment modes (v0.20 writes Knative and Standard; the older
# Serverless and RawDeployment are still accepted) -> our trafficMode
KSERVE_MODES = {"Knative": "serverless", "Serverless": "serverless", "Standard": "standard", "RawDeployment": "standard"}

Refusal = tuple[str, str]
# refusals that end when KServe's status catches up, not when someone fixes something
WAITS = frozenset({"DeploymentModeUnknown", "NotRolledOut"})


def deployment_mode(isvc: dict) -> str | None:
    """serverless | standard, from the annotation KServe reads, else from KServe's status."""
    meta = isvc.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(MODE_ANNOTATION) or (isvc.get("status") or {}).get("deploymentMode")
    return KSERVE_MODES.get(raw or "")


def mode_mismatch(spec: RolloutSpec, isvc: dict) -> Refusal | None:
    mode = deployment_mode(isvc)
    if mode is None:
        return (
            "DeploymentModeUnknown",
            f"InferenceService {spec.inference_service!r} states no deployment mode yet "
            f"(annotation {MODE_ANNOTATION} or status.deploymentMode); waiting for KServe",
        )
    if mode != spec.traffic_mode:
        return (
            "TrafficModeMismatch",
            f"spec.strategy.trafficMode is {spec.traffic_mode} but InferenceService "
            f"{spec.inference_service!r} runs in {mode} mode: KServe would ignore or refuse the canary",
        )
    return None


def canary_in_place(spec: RolloutSpec, status: Status, isvc: dict) -> Refusal | None:
    """A first look at an InferenceService that already runs a canary this rollout did not start:
    what serves stable cannot be told from its spec, so adopting it could promote the candidate."""
    if status.get("stableVersion"):
        return None
    s = isvc.get("spec") or {}
    if "canaryTrafficPercent" in (s.get("predictor") or {}) or s.get("canary"):
        return (
            "CanaryInPlace",
            f"InferenceService {spec.inference_service!r} already has a canary "
            "(spec.predictor.canaryTrafficPercent or spec.canary); make it serve one version before a "
            "ModelRollout adopts it",
        )
    return None


def untagged(spec: RolloutSpec, isvc: dict) -> Refusal | None:
    """The evaluation and shadow steps reach the candidate at 0% through the `latest` tag KServe
    sets only with this annotation. The operator cannot add it: KServe copies annotations into the
    revision template, and its admission policy lets it change none."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    if annotations.get(TAG_ROUTING) == "true":
        return None
    for asked, reason, field in (
        (spec.evaluation, "EvaluationNeedsTagRouting", "spec.evaluation"),
        (spec.shadow, "ShadowNeedsTagRouting", "spec.strategy.shadow"),
    ):
        if asked is not None:
            return (
                reason,
                f"{field} needs InferenceService {spec.inference_service!r} annotated {TAG_ROUTING}: "
                '"true", so that KServe gives the candidate an address while it takes no traffic',
            )
    return None


def not_rolled_out(spec: RolloutSpec, isvc: dict) -> Refusal | None:
    """Until KServe has rolled out a serverless InferenceService's first revision it ignores
    canaryTrafficPercent and sends the latest revision everything (ksvc_reconciler.go routes by
    percent only once status names a rolled-out revision): a canary written now would take all
    traffic. The InferenceService's status changing wakes the rollout again."""
    if spec.traffic_mode != "serverless":
        return None
    predictor = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
    if predictor.get("latestRolledoutRevision"):
        return None
    return (
        "NotRolledOut",
        f"InferenceService {spec.inference_service!r} has no rolled-out revision yet "
        "(status.components.predictor.latestRolledoutRevision), and until it has KServe sends a canary all "
        "traffic; waiting for KServe",
    )


def refusal(spec: RolloutSpec, status: Status, isvc: dict) -> Refusal | None:
    return mode_mismatch(spec, isvc) or not_rolled_out(spec, isvc) or canary_in_place(spec, status, isvc) or untagged(spec, isvc)
