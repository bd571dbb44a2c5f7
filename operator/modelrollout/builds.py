"""What a version runs besides its model: the runtime image tag and resources. Pure.

A rollout may change, besides spec.predictor.model.storageUri, the model's `runtimeVersion` (KServe
sets it as the tag of the ServingRuntime's image, so an operator can move a tag but never name an
image) and its `resources`. A version is then told apart from another by what its Knative
revisions run: the storageUri KServe stamps on them and the predictor container's image and
resources. Stable's are read from the revision KServe rolled out when a rollout starts; the
candidate's follow from them the way KServe builds a revision (the template's resources over the
runtime's, the runtimeVersion as the image's tag). Anything not known (a standard-mode Deployment,
a status written before these fields) matches anything, which is how versions were told apart by
storageUri alone.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any, Mapping

from kubernetes.utils import parse_quantity

CONTAINER = "kserve-container"  # the predictor container KServe builds from the runtime
STORAGE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"  # KServe stamps it on every revision
SECTIONS = ("requests", "limits")
_TAG = re.compile(r"(:([\w.\-_]*))$")  # KServe's UpdateImageTag (inferenceservice/utils/utils.go)


def quantities(resources: Mapping | None) -> "Quantities | None":
    """Resources as comparable numbers ("2000m" is "2"), None when not known."""
    if resources is None:
        return None
    return tuple(sorted((section, name, parse_quantity(value)) for section in SECTIONS for name, value in (resources.get(section) or {}).items()))


def overlay(base: Mapping | None, over: Mapping | None) -> dict | None:
    """`over`'s requests and limits over `base`'s, name by name, as KServe merges a template's
    resources over the runtime container's (and as a JSON merge patch of `over` does)."""
    if base is None and over is None:
        return None
    out = {section: dict((base or {}).get(section) or {}) for section in SECTIONS}
    for section in SECTIONS:
        out[section].update((over or {}).get(section) or {})
    return {section: values for section, values in out.items() if values}


def replacing(current: Mapping | None, wanted: Mapping | None) -> dict | None:
    """The merge patch that turns resources `current` into `wanted` (names `wanted` lacks removed)."""
    if wanted is None:
        return None
    patch: dict[str, Any] = {}
    for section in SECTIONS:
        now, then = dict((current or {}).get(section) or {}), dict(wanted.get(section) or {})
        if not then:
            patch[section] = None
        else:
            patch[section] = {**{name: None for name in now if name not in then}, **then}
    return patch


def retag(image: str, tag: str) -> str:
    """KServe's UpdateImageTag: the runtime image with `tag` (an image by digest keeps its digest)."""
    if "@sha256:" in image:
        return image
    return _TAG.sub(":" + tag, image) if _TAG.search(image) else f"{image}:{tag}"


Quantities = tuple[tuple[str, str, Decimal], ...]


@dataclasses.dataclass(frozen=True)
class Build:
    """What a revision runs; image or resources None: not known, so not compared."""

    storage_uri: str
    image: str | None = None
    resources: Quantities | None = None

    def matches(self, other: "Build | None") -> bool:
        if other is None or other.storage_uri != self.storage_uri:
            return False
        if self.image is not None and other.image is not None and self.image != other.image:
            return False
        return self.resources is None or other.resources is None or self.resources == other.resources

    def describe(self) -> str:
        return self.storage_uri if self.image is None else f"{self.storage_uri} on {self.image}"


def of_revision(revision: dict | None) -> Build | None:
    """What a Knative revision runs, from the URI KServe stamped on it and its predictor container."""
    uri = (((revision or {}).get("metadata") or {}).get("annotations") or {}).get(STORAGE_URI)
    if not uri:
        return None
    container = predictor_container(revision)
    return Build(uri, container.get("image"), quantities(container.get("resources") or {}))


def predictor_container(revision: dict | None) -> dict:
    containers = (((revision or {}).get("spec") or {}).get("containers")) or []
    return next((c for c in containers if c.get("name") == CONTAINER), containers[0] if containers else {})


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A version's runtime fields of spec.predictor.model (runtime_version and resources: None when
    the template has none) and what its revisions run (image, pod_resources: None when not known)."""

    runtime_version: str | None = None
    resources: Mapping | None = None
    image: str | None = None
    pod_resources: Mapping | None = None

    def build(self, storage_uri: str) -> Build:
        return Build(storage_uri, self.image, quantities(self.pod_resources))

    def fields(self) -> dict:
        """As KServe's model spec spells them, for a merge patch (None removes a runtimeVersion)."""
        return {"runtimeVersion": self.runtime_version, "resources": self.resources}

    def to_status(self) -> dict:
        named = {"runtimeVersion": self.runtime_version, "resources": self.resources, "image": self.image, "podResources": self.pod_resources}
        return {k: v for k, v in named.items() if v is not None}

    @classmethod
    def from_status(cls, raw: Mapping) -> "Runtime":
        return cls(raw.get("runtimeVersion"), raw.get("resources"), raw.get("image"), raw.get("podResources"))


def of_template(model: Mapping) -> Runtime:
    """The runtime fields an InferenceService's spec.predictor.model holds."""
    return Runtime(model.get("runtimeVersion"), model.get("resources"))


def with_revision(runtime: Runtime, seen: Runtime | None) -> Runtime:
    """`runtime` with what its revision runs (seen.image and seen.pod_resources), where that is not
    known yet and the revision was made from this template (its tag the runtimeVersion, the
    resources the template names its)."""
    if seen is None or seen.image is None or runtime.image is not None:
        return runtime
    if runtime.runtime_version is not None and not seen.image.endswith(":" + runtime.runtime_version):
        return runtime
    if not set(quantities(runtime.resources) or ()) <= set(quantities(seen.pod_resources) or ()):
        return runtime
    return dataclasses.replace(runtime, image=seen.image, pod_resources=seen.pod_resources)


def adopt(recorded: Runtime | None, seen: Runtime) -> Runtime:
    """Stable's runtime while nothing is rolling out: the template's fields as they are now (a
    user's edit is taken, not reverted), and what its revision runs once a revision made from them
    is the one KServe rolled out."""
    if recorded is None or (recorded.runtime_version, quantities(recorded.resources or {})) != (
        seen.runtime_version,
        quantities(seen.resources or {}),
    ):
        recorded = Runtime(seen.runtime_version, seen.resources)
    return with_revision(recorded, seen)


def candidate(stable: Runtime, runtime_version: str | None, resources: Mapping | None) -> Runtime:
    """The candidate's runtime: stable's with what the rollout changes, and what its revision
    will run as KServe builds it (the tag on stable's image, the resources over stable's)."""
    version = runtime_version if runtime_version is not None else stable.runtime_version
    image = stable.image if stable.image is None or runtime_version is None else retag(stable.image, runtime_version)
    pod = None if stable.pod_resources is None else overlay(stable.pod_resources, resources)
    return Runtime(version, overlay(stable.resources, resources), image, pod)


def holds(model: Mapping, storage_uri: str | None, runtime: Runtime | None) -> bool:
    """Whether spec.predictor.model is this version's template: its storageUri and, where the
    version's runtime is known, its runtimeVersion and resources."""
    if model.get("storageUri") != storage_uri:
        return False
    if runtime is None:
        return True
    return model.get("runtimeVersion") == runtime.runtime_version and quantities(model.get("resources") or {}) == quantities(runtime.resources or {})


def runtime_of(status: Mapping, role: str) -> Runtime | None:
    """status.stableRuntime / canaryRuntime; None where not recorded (a status from before them)."""
    raw = status.get(f"{role}Runtime")
    return None if raw is None else Runtime.from_status(raw)


def is_candidate(spec: Any, status: Mapping) -> bool:
    """Whether the status's candidate is the one the spec (a RolloutSpec) asks for: its version,
    storageUri and, once recorded, the runtime fields it changes."""
    if (spec.version, spec.storage_uri) != (status.get("canaryVersion"), status.get("canaryStorageUri")):
        return False
    stable, canary = runtime_of(status, "stable"), runtime_of(status, "canary")
    if stable is None or canary is None:
        return True
    wanted = candidate(stable, spec.runtime_version, spec.resources)
    return (wanted.runtime_version, quantities(wanted.resources)) == (canary.runtime_version, quantities(canary.resources))
