"""The shipped runtime gives every predictor its InferenceService's key of the optional ConfigMap
modelrollout-shadow as the mirror's file (predictor/mirror.py): KServe fills {{.Name}} in the env,
Knative accepts the optional ConfigMap volume. No kubelet runs here (kwok), so the mount's
content and its update on a ConfigMap change are not exercised: that is the kubelet's."""
from modelrollout.builds import predictor_container

from .inference_services import create, isvc, wait_ready


def test_each_predictor_reads_its_own_inference_services_shadow_key(runtime, namespace):
    runtime.model_volume(namespace)
    assert create(runtime, namespace, isvc("cancer", "Serverless"), dry_run=False) is None
    wait_ready(runtime, namespace, "cancer")
    name = runtime.get("isvc", "cancer", namespace=namespace)["status"]["components"]["predictor"]["latestCreatedRevision"]
    revision = runtime.get("revision", name, namespace=namespace)
    container = predictor_container(revision)
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["SHADOW_CONFIG"] == "/etc/modelrollout/shadow/cancer.yaml"          # KServe filled {{.Name}}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "shadow")
    assert mount["mountPath"] == "/etc/modelrollout/shadow" and mount.get("readOnly") is True
    volume = next(v for v in revision["spec"]["volumes"] if v["name"] == "shadow")
    assert volume["configMap"] == {"name": "modelrollout-shadow", "optional": True}
