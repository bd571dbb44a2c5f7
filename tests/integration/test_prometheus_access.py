"""Reaching a Prometheus that asks for more than a URL, as the operator does it: the token and the
CA read from a Secret and a ConfigMap on the real apiserver as the operator's ServiceAccount (the
shipped RBAC decides), a real Prometheus serving https with a certificate of our own CA, and a
token-checking gateway in front of one.

Stood in: the gateway. Prometheus itself checks only basic auth and client certificates; a
bearer token and a tenant header are what the gateway in front of Thanos, Mimir or a managed
Prometheus checks. The stand-in checks exactly those two headers and forwards to the real
Prometheus."""
import base64
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kubernetes
import pytest
import yaml

from modelrollout.adapters.kube import KubeApi
from modelrollout.adapters.measure import PrometheusMeasure
from modelrollout.analysis import Window
from modelrollout.spec import parse_spec

from e2e.controlplane.pki import Pki
from e2e.controlplane.process import wait_for
from e2e.localstack.prometheus import PrometheusServer
from e2e.localstack.stack import OPERATOR, install_modelrollout

from .steady_traffic import SteadyTraffic

pytestmark = pytest.mark.integration
TOKEN, TENANT = "s3cr3t-token", "team-a"


class TokenGateway:
    """Forwards GETs to `upstream` only with `Authorization: Bearer TOKEN` and `X-Scope-OrgID: TENANT`."""

    def __init__(self, upstream: str):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}" or self.headers.get("X-Scope-OrgID") != TENANT:
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(b"no valid token and tenant")
                    return
                with urllib.request.urlopen(upstream + self.path, timeout=5) as r:
                    body = r.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def traffic():
    with SteadyTraffic("cancer", ["v1", "v2"]) as served:
        yield served


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("prometheus-pki"))


@pytest.fixture(scope="module")
def https_prometheus(traffic, pki):
    crt, key = pki.issue("prometheus", "prometheus", hosts=("127.0.0.1",))
    tls = {"tls_server_config": {"cert_file": str(crt), "key_file": str(key)}}
    with PrometheusServer([traffic.target], web_config=tls) as prometheus:
        yield prometheus


@pytest.fixture(scope="module")
def gated_prometheus(traffic):
    with PrometheusServer([traffic.target]) as prometheus:
        yield TokenGateway(prometheus.url)


@pytest.fixture
def operator_kube(control_plane, namespace) -> KubeApi:
    """The Kubernetes adapter, authenticated as the operator's ServiceAccount."""
    install_modelrollout(control_plane.kube)
    config = control_plane.kube.service_account_kubeconfig(*OPERATOR)
    return KubeApi(kubernetes.config.new_client_from_config(config_file=str(config)))


def create(kube, namespace: str, kind: str, name: str, data: dict[str, str]) -> None:
    values = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()} if kind == "Secret" else data
    kube.apply(yaml.safe_dump({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
                               "data": values}))


def measure_with(operator_kube, namespace: str, prometheus: dict):
    spec = parse_spec({"inferenceService": "cancer", "model": {"version": "v2", "storageUri": "pvc://m/v2"},
                       "strategy": {"steps": [{"weight": 100}]},
                       "analysis": {"prometheus": {"namespaceLabel": "", **prometheus}, "scrapeInterval": "1s", "window": "10s"}})
    measure = PrometheusMeasure(operator_kube.get_secret, operator_kube.get_config_map)
    now = time.time()
    return measure(spec, "v2", "v1", Window(now - 10, now, now - 10), namespace)


def test_a_ca_from_a_config_map_verifies_an_https_prometheus(control_plane, namespace, operator_kube, https_prometheus, pki):
    create(control_plane.kube, namespace, "ConfigMap", "prometheus-ca", {"ca.crt": pki.ca_pem.decode()})
    ca = {"tlsConfig": {"ca": {"configMap": {"name": "prometheus-ca", "key": "ca.crt"}}}}
    m = wait_for(lambda: (lambda m: m if m.canary and m.canary.requests > 0 else None)(
        measure_with(operator_kube, namespace, {"url": https_prometheus.url, **ca})), what="a measurement over https")
    assert m.error is None and m.stable.requests > 0
    unverified = measure_with(operator_kube, namespace, {"url": https_prometheus.url})      # the system's CAs
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.error


def test_a_token_from_a_secret_and_a_tenant_header_pass_the_gateway(control_plane, namespace, operator_kube, gated_prometheus):
    create(control_plane.kube, namespace, "Secret", "prometheus-token", {"token": TOKEN + "\n"})   # a trailing newline, as files have
    access = {"url": gated_prometheus.url, "headers": {"X-Scope-OrgID": TENANT},
              "authorization": {"credentials": {"name": "prometheus-token", "key": "token"}}}
    m = wait_for(lambda: (lambda m: m if m.canary and m.canary.requests > 0 else None)(
        measure_with(operator_kube, namespace, access)), what="a measurement through the gateway")
    assert m.error is None
    assert "401" in measure_with(operator_kube, namespace, {**access, "headers": {"X-Scope-OrgID": "team-b"}}).error
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(gated_prometheus.url + "/api/v1/query?query=up", timeout=5)     # the gateway does check


def test_a_missing_secret_or_key_is_an_error_naming_it(namespace, operator_kube, gated_prometheus, control_plane):
    access = {"url": gated_prometheus.url, "authorization": {"credentials": {"name": "nowhere", "key": "token"}}}
    assert f"Secret {namespace}/nowhere not found" in measure_with(operator_kube, namespace, access).error
    create(control_plane.kube, namespace, "Secret", "other", {"password": "x"})
    access["authorization"]["credentials"] = {"name": "other", "key": "token"}
    assert f"Secret {namespace}/other has no key 'token'" in measure_with(operator_kube, namespace, access).error
