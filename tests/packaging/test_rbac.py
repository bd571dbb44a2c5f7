"""The shipped ClusterRole grants exactly what the operator uses, as the real apiserver judges it:
the operator runs as its ServiceAccount with RBAC on, takes a rollout through start, analysis,
abort and deletion, and the apiserver's own audit log lists every call it made, allowed or
refused. A refused call, or a grant nobody used, fails."""
import os

import pytest
import yaml

from e2e.controlplane.kubernetes import Namespaced
from e2e.controlplane.process import wait_for
from e2e.localstack.observe import status_of
from e2e.localstack.operator import OperatorProcess
from e2e.localstack.stack import OPERATOR, inference_service, install_modelrollout, model_rollout

from .rendered import kustomized, rbac_rules, rendered_chart

pytestmark = pytest.mark.integration
USER = f"system:serviceaccount:{OPERATOR[0]}:{OPERATOR[1]}"


def call_of(event: dict) -> tuple[str, str, str]:
    ref = event["objectRef"]
    resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    return ref.get("apiGroup", ""), resource, event["verb"]


def calls_since(kube, user: str, seen_before: int) -> tuple[set, set]:
    """(calls `user` made, calls it was refused) after its first `seen_before` audit events.
    Refused by RBAC, as the authorizer recorded it: a 403 from admission (such as an Event in a
    namespace being deleted) is not an RBAC refusal."""
    events = [e for e in kube.audit(user)[seen_before:] if e.get("objectRef") and e["stage"] == "ResponseComplete"]
    return ({call_of(e) for e in events},
            {call_of(e) for e in events if e.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid"})


def evaluate_without_holdout(api, kube, user: str, seen_before: int) -> None:
    """A rollout with the evaluation step, whose holdout ConfigMap is missing: the read is what counts.
    Applied together with its InferenceService: the operator waits (NotRolledOut) until KServe has
    rolled out the first revision, before which the candidate would never get its own address."""
    api.kubectl("apply", "-f", "-", input=inference_service("evaluated", "v1", tag_routing=True))
    api.kubectl("apply", "-f", "-", input=model_rollout(
        "v2", "http://127.0.0.1:9", name="evaluated", interval="1s", steps=[{"weight": 10}, {"weight": 100}],
        evaluation={"dataset": {"configMap": "holdout"}, "metric": "accuracy"}))
    wait_for(lambda: any(call_of(e)[1] == "configmaps" for e in kube.audit(user)[seen_before:] if e.get("objectRef")),
             timeout=120, what="the holdout read")


def shadow_until_mirrored(api, kube, user: str, seen_before: int) -> None:
    """A rollout with the shadow step: once the candidate has an address the operator writes the
    mirror's file into ConfigMap modelrollout-shadow (created at its first key); deleting the
    rollout removes the key (a patch)."""
    api.kubectl("apply", "-f", "-", input=inference_service("shadowed", "v1", tag_routing=True))
    api.kubectl("apply", "-f", "-", input=model_rollout(
        "v2", "http://127.0.0.1:9", name="shadowed", interval="1s", steps=[{"weight": 10}, {"weight": 100}],
        shadow={"fraction": 0.1}))
    wait_for(lambda: ("", "configmaps", "create") in calls_since(kube, user, seen_before)[0], timeout=120,
             what="the mirror's ConfigMap written")
    api.kubectl("delete", "mro", "shadowed", "--timeout=30s")


@pytest.fixture(scope="module")
def audited(control_plane, tmp_path_factory):
    """(calls the operator made, calls it was refused), from the apiserver's audit log."""
    kube = control_plane.kube
    install_modelrollout(kube)
    namespace = f"rbac-{os.urandom(3).hex()}"
    kube.kubectl("create", "namespace", namespace)
    kube.model_volume(namespace)
    api = Namespaced(kube, namespace)
    api.kubectl("apply", "-f", "-", input=inference_service())
    seen_before = len(kube.audit(USER))
    # cluster-wide, as manifests/ deploys it (watching one namespace, kopf also lists namespaces)
    with OperatorProcess(kube.service_account_kubeconfig(*OPERATOR), tmp_path_factory.mktemp("rbac") / "operator.log"):
        # Prometheus unreachable on purpose: the analysis path still runs (Error); its token is
        # read from a Secret (missing: the read is what counts)
        token = {"authorization": {"credentials": {"name": "prometheus-token", "key": "token"}}}
        api.kubectl("apply", "-f", "-", input=model_rollout("v2", "http://127.0.0.1:9", interval="1s",
                                                          steps=[{"weight": 10}, {"weight": 100}], access=token))
        wait_for(lambda: (status_of(api).get("lastAnalysis") or {}).get("verdict") == "Error", what="an analysis")
        assert "Secret" in status_of(api)["lastAnalysis"]["reason"]
        # a standard-mode rollout reads KServe's HTTPRoute to see whether the split is served
        api.kubectl("apply", "-f", "-", input=inference_service("std", "v1", "standard"))
        api.kubectl("apply", "-f", "-", input=model_rollout(
            "v2", "http://127.0.0.1:9", "standard", name="std", interval="1s", steps=[{"weight": 10}, {"weight": 100}],
            autoscaling={"minReplicas": 1, "maxReplicas": 2, "metric": "cpu", "target": 70}))
        wait_for(lambda: any(call_of(e)[1] == "httproutes" for e in kube.audit(USER)[seen_before:] if e.get("objectRef")),
                 what="the HTTPRoute read")
        evaluate_without_holdout(api, kube, USER, seen_before)
        shadow_until_mirrored(api, kube, USER, seen_before)
        api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"abort":true}}')
        wait_for(lambda: status_of(api).get("phase") == "RolledBack", what="rollback")
        # the operator reads the revisions KServe routes to, to confirm stable serves all
        wait_for(lambda: status_of(api).get("servingVerified"), what="stable's revision confirmed")
        api.kubectl("delete", "mro", "cancer", "std", "evaluated", "--timeout=30s")
    kube.kubectl("delete", "namespace", namespace, "--wait=false")
    return calls_since(kube, USER, seen_before)


def test_the_operator_made_the_calls_a_rollout_needs_and_none_was_refused(audited):
    calls, refused = audited
    for call in [("serving.modelrollout.io", "modelrollouts", "watch"), ("serving.modelrollout.io", "modelrollouts/status", "patch"),
                 ("serving.kserve.io", "inferenceservices", "patch"), ("events.k8s.io", "events", "create")]:
        assert call in calls
    assert refused == set(), "the apiserver refused these: the ClusterRole misses them"


@pytest.mark.parametrize("source", ["manifests", "chart"])
def test_the_cluster_role_grants_exactly_those_calls(audited, source):
    calls, _ = audited
    granted = rbac_rules(kustomized("manifests") if source == "manifests" else rendered_chart())
    assert granted - calls == set(), "granted but never used"
    assert calls - granted == set(), "used but not granted"


def test_with_watch_namespaces_the_chart_grants_roles_there_and_nothing_namespaced_elsewhere(control_plane, tmp_path):
    """The chart installed with operator.watchNamespaces (review M5): the operator, as the chart's
    ServiceAccount, runs a rollout in its namespace with no refusal, and may not touch another's."""
    kube = control_plane.kube
    install_modelrollout(kube)
    release, watched, other = (f"{p}-{os.urandom(3).hex()}" for p in ("mr", "scoped", "other"))
    for ns in (release, watched, other):
        kube.kubectl("create", "namespace", ns)
    docs = rendered_chart({"operator": {"watchNamespaces": [watched]}}, namespace=release)
    kube.apply(yaml.safe_dump_all([d for d in docs if d["kind"] in (
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]))
    user = f"system:serviceaccount:{release}:modelrollout-operator"
    kube.model_volume(watched)
    api = Namespaced(kube, watched)
    api.kubectl("apply", "-f", "-", input=inference_service())
    seen_before = len(kube.audit(user))
    with OperatorProcess(kube.service_account_kubeconfig(release, "modelrollout-operator"), tmp_path / "operator.log",
                         namespace=watched, lease_namespace=release):
        api.kubectl("apply", "-f", "-", input=model_rollout("v2", "http://127.0.0.1:9", interval="1s",
                                                          steps=[{"weight": 10}, {"weight": 100}]))
        wait_for(lambda: (status_of(api).get("lastAnalysis") or {}).get("verdict") == "Error", what="an analysis")
        evaluate_without_holdout(api, kube, user, seen_before)
        shadow_until_mirrored(api, kube, user, seen_before)
        api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"abort":true}}')
        wait_for(lambda: status_of(api).get("servingVerified"), what="stable's revision confirmed after the abort")
    calls, refused = calls_since(kube, user, seen_before)
    assert refused == set(), "the chart's scoped grants miss these"
    assert ("serving.kserve.io", "inferenceservices", "patch") in calls
    for ns, expected in ((watched, "yes"), (other, "no")):
        answer = kube.kubectl("auth", "can-i", "patch", "inferenceservices.serving.kserve.io", "-n", ns,
                              "--as", user, check=False).stdout.strip()
        assert answer == expected, (ns, answer)
    for ns in (release, watched, other):
        kube.kubectl("delete", "namespace", ns, "--wait=false")
