"""The local stack's shared pieces: one predictor per version and a Prometheus scraping them, for
the whole session, and a Rollout (its namespace, InferenceService, operator and driver) per scenario."""
import pytest

from e2e.localstack.prometheus import PrometheusServer
from e2e.localstack.stack import Predictors, Rollout


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    logs = tmp_path_factory.mktemp("predictors")
    with Predictors(["v1", "v2", "v3-errors", "v3-slow", "v3-shifted"], logs) as predictors, \
            PrometheusServer(predictors.targets()) as prometheus:
        yield predictors, prometheus


@pytest.fixture
def stack(control_plane, shared, tmp_path):
    predictors, prometheus = shared
    with Rollout(control_plane, predictors, prometheus, tmp_path) as rollout:
        yield rollout
        print(rollout.report())          # shown when the scenario failed
