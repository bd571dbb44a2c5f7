"""Shared by every test process.

tritonclient and kserve both register the protobuf package `inference` (different files, same
message names), so they cannot be imported into one process. The tritonclient tests therefore
run in a pytest process of their own (`bash .ci/test` runs both); a plain `pytest` leaves them
out unless they are named on the command line.

Tests that need Kubernetes, KServe or Knative use the real ones: the `control_plane` fixture
starts e2e/controlplane once per session, inside a network namespace of its own with only
loopback, which the whole test process enters first (e2e/controlplane/netns.py; needs root)."""
import os
import tempfile
from pathlib import Path

import pytest

TRITONCLIENT_TESTS = ("test_predictor_server.py", "test_predictor_lifecycle.py")


def pytest_configure(config):
    if os.geteuid() == 0:       # as anyone else, control-plane tests fail naming the reason
        from e2e.controlplane import netns
        netns.isolate()


def pytest_ignore_collect(collection_path, config):
    if collection_path.name in TRITONCLIENT_TESTS:
        return not any(collection_path.name in str(arg) for arg in config.args)
    return None


def pytest_collection_modifyitems(session, config, items):
    """Tests on the control plane run last: it starts with the first of them and keeps running,
    and its background CPU would make the latency-sensitive tests before them jitter."""
    items.sort(key=lambda item: "control_plane" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def control_plane():
    """The real control plane, shared by the session; tests keep to namespaces of their own."""
    from e2e.controlplane.cluster import ControlPlane
    with ControlPlane(Path(tempfile.mkdtemp(prefix="controlplane-"))) as cp:
        yield cp


@pytest.fixture
def kube(control_plane):
    return control_plane.kube


@pytest.fixture
def namespace(kube, request):
    """A namespace of this test's own, deleted (without waiting) afterwards. Short: KServe builds
    host names of `<isvc>-predictor-<namespace>`, which must fit a 63-character DNS label."""
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[5:25].strip("-") + \
           "-" + os.urandom(3).hex()
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
