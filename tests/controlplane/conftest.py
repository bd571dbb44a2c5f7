import pytest

from e2e.controlplane.manifests import dump, of_kind
from e2e.localstack.stack import kind_manifests


@pytest.fixture(scope="module")
def runtime(control_plane):
    """The shipped ClusterServingRuntimes, with the kind suite's kind.local images."""
    control_plane.kube.apply(dump(of_kind(kind_manifests(control_plane.kube), "ClusterServingRuntime")))
    return control_plane.kube
