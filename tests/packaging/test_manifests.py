"""Every shipped object is accepted by the real control plane (kube-apiserver with KServe's and
Knative's webhooks): manifests/ and its examples are applied as a user would, the chart's objects
by a server-side dry run. The Prometheus Operator's kinds, whose CRDs are not installed there, are
checked for the fields it requires. Pods are hardened; the chart renders the same objects as
manifests/, with the same CRD file; each runtime declares one port (Knative routes one)."""
import json
import re

import pytest
import yaml

from e2e.controlplane.manifests import dump

from .rendered import ALL_ON, CHART, REPO, chart, key, kustomized, rbac_rules, rendered_chart

CRD_PATH = REPO / "crds/modelrollout.yaml"
PROMETHEUS_OPERATOR = {   # kind -> fields that must be present
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
def test_every_object_is_accepted_by_the_real_apiserver(control_plane, source):
    objects = SOURCES[source]()
    for obj in objects:
        for field in PROMETHEUS_OPERATOR.get((obj["apiVersion"], obj["kind"]), ()):
            assert _field(obj, field) is not None, f"{key(obj)}: {field} missing"
    served = [o for o in objects if (o["apiVersion"], o["kind"]) not in PROMETHEUS_OPERATOR]
    kube = control_plane.kube
    kube.apply(dump(kustomized("manifests")))          # what every other source needs first
    kube.wait_established()
    kube.apply(dump(served), *(["--dry-run=server"] if source == "chart" else []))


@pytest.mark.parametrize("source", ["manifests", "chart"])
def test_each_runtime_declares_one_port(source):
    runtimes = [o for o in SOURCES[source]() if o["kind"] == "ClusterServingRuntime"]
    assert {r["spec"]["protocolVersions"][0] for r in runtimes} == {"v2", "grpc-v2"}
    for runtime in runtimes:
        ports = [p for c in runtime["spec"]["containers"] for p in c.get("ports", [])]
        assert len(ports) == 1 and len(runtime["spec"]["protocolVersions"]) == 1, key(runtime)
        assert ports[0]["name"] == {"v2": "http1", "grpc-v2": "h2c"}[runtime["spec"]["protocolVersions"][0]], key(runtime)


@pytest.mark.parametrize("source", ["manifests", "chart", "examples"])
def test_prometheus_scrapes_the_predictor_itself(source):
    """packaging-review C4: KServe's enable-prometheus-scraping makes its pod mutator point
    prometheus.io/port at queue-proxy's 9091 (or qpext's 9088, which stock Knative lacks), so no
    predictor_* series would be scraped. The runtimes name the predictor's port in both the
    plain and KServe's own keys instead."""
    objects = SOURCES[source]()
    for obj in objects:
        assert "serving.kserve.io/enable-prometheus-scraping" not in json.dumps(obj), key(obj)
    for runtime in (o for o in objects if o["kind"] == "ClusterServingRuntime"):
        annotations = runtime["spec"]["annotations"]
        for prefix in ("prometheus.io", "prometheus.kserve.io"):
            assert (annotations[f"{prefix}/port"], annotations[f"{prefix}/path"]) == ("8080", "/metrics"), key(runtime)


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
                   "modelrollout_canary_weight_percent", "predictor_predictions_total", "modelrollout_evaluation_score",
                   "predictor_shadow_disagreements_total", "predictor_shadow_pairs_total", "predictor_shadow_requests_total"):
        assert series in exprs, series
    # series of one model in two namespaces (or two models' v1) stay apart (packaging-review m3)
    assert all("sum by (version" not in t["expr"] for p in dashboard["panels"] for t in p["targets"])
    # one model name in two namespaces is two models (packaging-review M7); latency is the successes'
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "namespace", "model"]
    for target in (t for p in dashboard["panels"] for t in p["targets"] if "predictor_" in t["expr"]):
        selectors = re.findall(r"predictor_\w+\{([^}]*)\}", target["expr"])
        assert selectors and all('namespace=~"$namespace"' in s for s in selectors), target["expr"]
        if "duration_seconds_bucket" in target["expr"]:
            assert 'status_class="2xx"' in target["expr"]


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


def test_the_network_policy_lets_the_operator_reach_webhooks_on_the_ports_given():
    def egress(values=None):
        policy = next(o for o in rendered_chart(values) if o and o["kind"] == "NetworkPolicy")
        return {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"] if p["protocol"] == "TCP"}
    assert egress() == {443, 6443, 9090, 80, 53}                  # https webhooks, Slack and Teams need nothing more
    assert egress({"operator": {"networkPolicy": {"enabled": True, "webhookPorts": [8080]}}}) == {443, 6443, 9090, 80, 53, 8080}
