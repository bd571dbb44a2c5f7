"""Every shipped object validates offline: built-in kinds against the Kubernetes schemas
(kubernetes-validate), ModelRollouts against our CRD (schema and CEL), third-party kinds by the
fields KServe and the Prometheus Operator require. Pods are hardened; the chart renders the same
objects as manifests/, with the same CRD file."""
import json

import kubernetes_validate
import pytest
import yaml

from e2e.localstack.crd_schema import CRD_PATH, CrdValidator

from .rendered import ALL_ON, CHART, REPO, chart, key, kustomized, rbac_rules, rendered_chart

K8S_VERSION = "1.30.0"
THIRD_PARTY = {   # kind -> fields that must be present
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"): ("spec.containers", "spec.supportedModelFormats", "spec.protocolVersions"),
    ("serving.kserve.io/v1beta1", "InferenceService"): ("spec.predictor.model.storageUri", "spec.predictor.model.modelFormat.name"),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("spec.selector", "spec.podMetricsEndpoints"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("spec.selector", "spec.endpoints"),
}
SOURCES = {
    "manifests": lambda: list(kustomized("manifests")),
    "monitoring": lambda: list(kustomized("manifests/monitoring")),
    "examples": lambda: list(kustomized("manifests/examples")),
    "chart": lambda: rendered_chart(ALL_ON),
}
# endpoints the processes really serve (the integration tests call each of them)
REAL_PROBE_PATHS = {"/healthz", "/v2/health/ready", "/v2/health/live"}


def _field(obj, dotted):
    for part in dotted.split("."):
        obj = obj[part]
    return obj


@pytest.mark.parametrize("source", SOURCES)
def test_every_object_validates(source):
    validator = CrdValidator.from_file()
    for obj in SOURCES[source]():
        kind = (obj["apiVersion"], obj["kind"])
        if kind == ("serving.modelrollout.io/v1alpha1", "ModelRollout"):
            validator.validate(obj)
        elif kind in THIRD_PARTY:
            for field in THIRD_PARTY[kind]:
                assert _field(obj, field) is not None, f"{key(obj)}: {field} missing"
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def _containers(obj):
    if obj["kind"] == "Deployment":
        spec = obj["spec"]["template"]["spec"]
        return spec, spec["containers"]
    if obj["kind"] == "ClusterServingRuntime":
        return {}, obj["spec"]["containers"]
    return None, []


@pytest.mark.parametrize("source", ["manifests", "chart"])
def test_pods_are_hardened_and_probed(source):
    workloads = [o for o in SOURCES[source]() if _containers(o)[1]]
    assert {o["kind"] for o in workloads} == {"Deployment", "ClusterServingRuntime"}
    for obj in workloads:
        pod, containers = _containers(obj)
        for c in containers:
            sc = {**(pod.get("securityContext") or {}), **c.get("securityContext", {})}
            where = f"{key(obj)} {c['name']}"
            assert sc.get("runAsNonRoot") is True and sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True and sc["capabilities"]["drop"] == ["ALL"], where
            assert set(c["resources"]) == {"requests", "limits"}, where
            for probe in ("livenessProbe", "readinessProbe"):
                assert c[probe]["httpGet"]["path"] in REAL_PROBE_PATHS, where


def test_the_chart_ships_the_crd_file_itself_and_the_same_objects_as_manifests():
    assert [yaml.safe_load(c["data"]) for c in chart().crds] == [yaml.safe_load(CRD_PATH.read_text())]
    assert (CHART / "crds" / "modelrollout.yaml").resolve() == CRD_PATH
    from_chart = {(k, n.removeprefix("mr-")) for k, n in map(key, rendered_chart(ALL_ON))}
    from_manifests = {key(o) for o in kustomized("manifests") + kustomized("manifests/monitoring") if o["kind"] != "Namespace"}
    assert from_chart == from_manifests
    assert rbac_rules(rendered_chart()) == rbac_rules(kustomized("manifests"))
    runtime = [next(o for o in docs if o["kind"] == "ClusterServingRuntime")["spec"]
               for docs in (rendered_chart(), kustomized("manifests"))]
    assert runtime[0]["containers"][0]["args"] == runtime[1]["containers"][0]["args"]
    assert "--model_name={{.Name}}" in runtime[0]["containers"][0]["args"]    # KServe's template, not Helm's


def test_the_dashboard_shows_what_the_issue_asks_for():
    dashboard = json.loads((REPO / "manifests/monitoring/modelrollout-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for series in ("predictor_requests_total", 'code=~"5.."', "histogram_quantile(0.5,", "histogram_quantile(0.95,",
                   "histogram_quantile(0.99,", "predictor_batch_size", "predictor_queue_delay_seconds",
                   "modelrollout_canary_weight_percent"):
        assert series in exprs, series


@pytest.mark.parametrize("values,message", [
    ({"operator": {"resyncSeconds": 0}}, "/operator/resyncSeconds"),
    ({"operator": {"image": {"repository": "x", "tag": ""}}}, "/operator/image/tag"),
    ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "/operator/watchNamespaces/0"),
    ({"runtime": {"resources": {"requests": {"cpu": "lots", "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1Gi"}}}},
     "/runtime/resources/requests/cpu"),
    ({"monitoring": {"dashboard": {"enabled": "yes"}}}, "/monitoring/dashboard/enabled"),
    ({"replicas": 3}, "additional properties 'replicas' not allowed"),
])
def test_bad_values_are_refused_naming_the_key(values, message):
    with pytest.raises(Exception) as info:
        chart().render(values=values, name="mr", namespace="x")
    assert message in str(info.value)


def test_good_values_render():
    docs = rendered_chart({"operator": {"watchNamespaces": ["models", "staging"], "resyncSeconds": 5},
                           "runtime": {"enabled": False}})
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=models" in args and "--namespace=staging" in args and "--resync=5" in args
    assert not any(d["kind"] == "ClusterServingRuntime" for d in docs)


def test_helm_lint_finds_no_errors():
    import helm_python
    report = helm_python.lint(str(CHART), strict=False)
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 3], report
