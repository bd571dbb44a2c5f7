from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "manifests/runtime/clusterservingruntime.yaml"


@pytest.fixture(scope="module")
def runtime(control_plane):
    control_plane.kube.apply(RUNTIME.read_text())
    return control_plane.kube
