"""Kubernetes itself on loopback, as controller-runtime's envtest runs it, plus what envtest leaves
out so that Deployments become Ready pods: etcd, kube-apiserver (RBAC on, service-account tokens,
admission webhooks), kube-controller-manager, kube-scheduler, and kwok, which plays the kubelet
of one fake node (pods Running and Ready, no containers).

Binaries come from e2e/controlplane/build.sh; `Kubernetes(workdir, root).start()` runs them in
the current network namespace, which must be the isolated one (netns.py).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from harness.processes import free_port

from . import netns
from .pki import Pki
from .process import Daemon, wait_for

NODE = "kwok-node-0"
KWOK_NODE = {
    "apiVersion": "v1", "kind": "Node",
    "metadata": {"name": NODE, "annotations": {"kwok.x-k8s.io/node": "fake"},
                 "labels": {"type": "kwok", "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}},
    "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
               "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"}},
}


# The apiserver's audit log records, at Metadata level, what ServiceAccounts do: RBAC tests read
# which calls the operator really made (and which were refused) from the apiserver itself.
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                "rules": [{"level": "Metadata", "userGroups": ["system:serviceaccounts"]}, {"level": "None"}]}


def condition_true(obj: dict | None, kind: str = "Ready") -> bool:
    """Whether an object's status carries condition `kind` with status True."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == kind and c["status"] == "True" for c in conditions)


def write_kubeconfig(path: Path, server: str, ca: Path, user: dict, namespace: str = "default") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user", "namespace": namespace}}]}))
    return path


class Kubernetes:
    def __init__(self, workdir: Path, root: Path):
        self.dir, self.bin = Path(workdir), Path(root) / "bin"
        self.logs = self.dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pki = Pki(self.dir / "pki")
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.daemons: list[Daemon] = []
        self.kubeconfig = self.dir / "admin.kubeconfig"
        self.audit_log = self.dir / "audit.log"

    def _daemon(self, name: str, *args: str, env: dict[str, str] | None = None) -> Daemon:
        daemon = Daemon(name, [self.bin / name, *args], self.logs, env).start()
        self.daemons.append(daemon)
        return daemon

    def start(self) -> "Kubernetes":
        if not netns.isolated():
            raise RuntimeError("the local control plane must run in its own network namespace: call "
                               "e2e.controlplane.netns.isolate() first (conftest.py does, as root)")
        etcd_port, peer_port = free_port(), free_port()
        etcd = self._daemon(
            "etcd", f"--data-dir={self.dir / 'etcd'}", "--name=default", "--unsafe-no-fsync=true",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}", f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}", "--log-level=warn")
        etcd.wait_healthy(f"http://127.0.0.1:{etcd_port}/health", timeout=30)

        serving = self.pki.issue("apiserver", "kube-apiserver", hosts=(
            "127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"))
        admin = self.pki.issue("admin", "admin", orgs=("system:masters",), client=True)
        sa_public, sa_private = self.pki.signing_key("service-accounts")
        apiserver = self._daemon(
            "kube-apiserver", f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}", "--advertise-address=10.96.0.1",
            f"--tls-cert-file={serving[0]}", f"--tls-private-key-file={serving[1]}", f"--client-ca-file={self.pki.ca_file}",
            f"--service-cluster-ip-range={netns.SERVICE_CIDR}", "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={sa_public}",
            f"--service-account-signing-key-file={sa_private}", "--profiling=false", f"--cert-dir={self.dir / 'pki'}",
            f"--audit-policy-file={self._write('audit-policy.yaml', AUDIT_POLICY)}", f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=blocking")
        apiserver.wait_healthy(f"{self.url}/readyz", ca=self.pki.ca_file, timeout=60)
        write_kubeconfig(self.kubeconfig, self.url, self.pki.ca_file,
                         {"client-certificate": str(admin[0]), "client-key": str(admin[1])})

        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0"]
        self._daemon("kube-controller-manager", *common, f"--service-account-private-key-file={sa_private}",
                     f"--root-ca-file={self.pki.ca_file}", "--use-service-account-credentials=false",
                     "--controllers=*")
        self._daemon("kube-scheduler", *common)
        self._daemon("kwok", f"--kubeconfig={self.kubeconfig}", "--manage-all-nodes=false",
                     "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", f"--cidr={netns.POD_CIDR}",
                     "--node-ip=10.244.0.1", f"--server-address=127.0.0.1:{free_port()}",
                     # renew the node's Lease, as a kubelet does: without it the node-lifecycle
                     # controller finds the node unresponsive after 50 s and marks its pods NotReady
                     "--node-lease-duration-seconds=40")
        self.apply(json.dumps(KWOK_NODE))
        wait_for(lambda: self._check() or self.node_ready(), 60, f"node {NODE} Ready (kwok log {self.logs / 'kwok.log'})", 0.3)
        return self

    def _write(self, name: str, obj: dict) -> Path:
        path = self.dir / name
        path.write_text(yaml.safe_dump(obj))
        return path

    def _check(self) -> None:
        for d in self.daemons:
            d.check()

    def node_ready(self) -> bool:
        return condition_true(self.get("node", NODE))

    def command(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        return [str(self.bin / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(self.command(*args, kubeconfig=kubeconfig), input=input, capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def apply(self, manifest: str, *args: str) -> None:
        """Server-side apply (as the platform's large CRDs need)."""
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", *args, input=manifest)

    def wait_established(self, timeout: float = 60.0) -> None:
        """Until every CRD is Established (`kubectl wait` errors on a CRD with no conditions yet)."""
        wait_for(lambda: all(condition_true(crd, "Established") for crd in self.get("crd")["items"]),
                 timeout, "every CRD to be Established", 0.2)

    def get(self, *what: str, namespace: str | None = None) -> dict | None:
        args = ["get", *what, "-o", "json", "--ignore-not-found"] + (["-n", namespace] if namespace else [])
        out = self.kubectl(*args).stdout
        return json.loads(out) if out.strip() else None

    def model_volume(self, namespace: str, name: str = "models") -> None:
        """A PersistentVolumeClaim `name`, bound to a volume of its own, as `pvc://name/...` storage URIs
        need (the pod is unschedulable until it is bound; no container ever reads it here)."""
        volume = f"{name}-{namespace}"
        self.apply(yaml.safe_dump_all([
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
             "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"], "hostPath": {"path": "/models"},
                      "claimRef": {"namespace": namespace, "name": name}, "storageClassName": ""}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": namespace},
             "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}},
                      "storageClassName": "", "volumeName": volume}}]))
        wait_for(lambda: (self.get("pvc", name, namespace=namespace) or {}).get("status", {}).get("phase") == "Bound",
                 30, f"PersistentVolumeClaim {namespace}/{name} to be bound", 0.2)

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig that authenticates as a ServiceAccount with a token from the TokenRequest API,
        so the apiserver's RBAC decides what it may do."""
        token = self.kubectl("create", "token", name, "-n", namespace, "--duration=24h").stdout.strip()
        return write_kubeconfig(self.dir / f"{namespace}.{name}.kubeconfig", self.url, self.pki.ca_file,
                                {"token": token}, namespace=namespace)

    def audit(self, user: str) -> list[dict]:
        """The audit events of one user (a ServiceAccount: system:serviceaccount:NS:NAME), in order."""
        if not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text().split("\n")[:-1]   # the last is empty, or still being written
        events = (json.loads(line) for line in lines if line.strip())
        return [e for e in events if e.get("user", {}).get("username") == user]

    def stop(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.stop()
        self.daemons.clear()

    def __enter__(self) -> "Kubernetes":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class Namespaced:
    """kubectl against one namespace of the control plane, as tests and the local stack use it."""

    def __init__(self, kube: Kubernetes, namespace: str):
        self.kube, self.namespace = kube, namespace

    def command(self, *args: str) -> list[str]:
        return self.kube.command("-n", self.namespace, *args)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self.kube.kubectl("-n", self.namespace, *args, input=input, check=check)
