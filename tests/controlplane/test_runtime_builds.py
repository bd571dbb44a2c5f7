"""A rollout of a new runtime tag and resources tells the versions apart by what their Knative
revisions run: stable's image and resources read from the revision KServe rolled out, the
candidate's derived from them (builds.candidate) the way the operator expects KServe to build its
revision. Here the real KServe builds it, and the derivation must match what it wrote."""
import json

from e2e.controlplane.process import wait_for
from modelrollout.adapters.autoscaling import stable_scale
from modelrollout.adapters.serverless import ServerlessRouter
from modelrollout.builds import candidate, of_revision, predictor_container
from modelrollout.planner import Traffic
from modelrollout.spec import AutoscalingSpec

from .inference_services import MODEL, create, isvc, wait_ready

V1, V2 = MODEL["storageUri"], "pvc://models/cancer/v2"
RESOURCES = {"requests": {"cpu": "300m"}, "limits": {"memory": "3Gi"}}


def _observed(runtime, namespace):
    current = runtime.get("isvc", "cancer", namespace=namespace)
    return current, {(kind, name): runtime.get(kind, name, namespace=namespace)
                     for kind, name in ServerlessRouter().observe(current)}


def _new_revision(runtime, namespace, first):
    predictor = runtime.get("isvc", "cancer", namespace=namespace)["status"]["components"]["predictor"]
    created = predictor.get("latestCreatedRevision")
    return created if created != first and runtime.get("revision", created, namespace=namespace) else None


def test_the_candidates_revision_runs_the_image_and_resources_the_operator_derived(runtime, namespace):
    runtime.model_volume(namespace)
    assert create(runtime, namespace, isvc("cancer", "Serverless"), dry_run=False) is None
    wait_ready(runtime, namespace, "cancer")
    current, observed = _observed(runtime, namespace)
    router = ServerlessRouter()
    stable = router.stable_runtime(current, observed)
    assert stable is not None and stable.image and stable.image.startswith("kind.local/"), stable
    first = current["status"]["components"]["predictor"]["latestRolledoutRevision"]
    assert of_revision(observed[("revision", first)]).matches(stable.build(V1))

    wanted = candidate(stable, "0.5.0", RESOURCES)
    traffic = Traffic("v1", V1, "v2", V2, 20, stable_runtime=stable, canary_runtime=wanted)
    patch = router.patch(current, traffic, stable_scale(AutoscalingSpec()), observed)
    runtime.kubectl("patch", "isvc", "cancer", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    found = {}
    wait_for(lambda: found.update(name=_new_revision(runtime, namespace, first)) or found["name"], 90,
             "KServe to create the candidate's revision")
    revision = runtime.get("revision", found["name"], namespace=namespace)
    built = of_revision(revision)
    assert built is not None and built.storage_uri == V2
    assert built.image == wanted.image == stable.image.rsplit(":", 1)[0] + ":0.5.0"
    assert built.resources == wanted.build(V2).resources, predictor_container(revision).get("resources")
    assert traffic.canary_build.matches(built) and not traffic.stable_build.matches(built)
    current, observed = _observed(runtime, namespace)            # and the operator reads it so
    assert (found["name"], built) in router.revisions(current, observed)
