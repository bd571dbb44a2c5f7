"""A serverless pod's data plane, run for real: Knative's queue-proxy (built from the pinned module,
build_queue_proxy.sh) in front of a user container, both in a network namespace of their own, as
in a pod. queue-proxy binds fixed ports (8022 admin, 9090 autoscaler metrics), so two pods need two
namespaces, as on a node.

Stood in: the pod network. Each pod's namespace has only loopback; a forwarder in the caller's
namespace (127.0.0.1, a free port per pod port) opens every connection from a thread that has
entered the pod's namespace (setns is per thread), so the traffic driver and Prometheus reach
queue-proxy's serving and metrics ports, and no packet leaves loopback.
"""
from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from pathlib import Path

from harness.processes import wait_until_answers

HERE = Path(__file__).resolve().parent
CLONE_NEWNET = 0x40000000
SERVING_PORT, METRICS_PORT, USER_PORT = 8012, 9091, 8080     # Knative's queue-proxy defaults; the container's


def queue_proxy_binary() -> str:
    result = subprocess.run(["bash", str(HERE / "build_queue_proxy.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"e2e/controlplane/build_queue_proxy.sh failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def queue_proxy_env(namespace: str, revision: str, pod: str, user_port: int = USER_PORT) -> dict[str, str]:
    """What Knative's revision reconciler gives the queue-proxy container (pkg/reconciler/revision/
    resources/queue.go), request metrics on its Prometheus port as config-observability asks."""
    configuration = revision.rsplit("-", 1)[0]
    return {"SERVING_NAMESPACE": namespace, "SERVING_SERVICE": configuration, "SERVING_CONFIGURATION": configuration,
            "SERVING_REVISION": revision, "SERVING_POD": pod, "SERVING_POD_IP": "127.0.0.1",
            "QUEUE_SERVING_PORT": str(SERVING_PORT), "QUEUE_SERVING_TLS_PORT": "8112", "USER_PORT": str(user_port),
            "CONTAINER_CONCURRENCY": "0", "REVISION_TIMEOUT_SECONDS": "300", "SERVING_LOGGING_CONFIG": "",
            "SERVING_LOGGING_LEVEL": "info", "SERVING_READINESS_PROBE": "",
            "OBSERVABILITY_CONFIG": '{"requestMetrics": {"protocol": "prometheus"}}'}


class Forwarder:
    """127.0.0.1:<free port> here -> 127.0.0.1:<port> in the namespace of process `holder`."""

    def __init__(self, holder: int, port: int):
        self.netns, self.port = f"/proc/{holder}/ns/net", port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return                          # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        fd = os.open(self.netns, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            upstream = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            for s in (upstream, client):         # relayed as it comes: no Nagle wait per hop
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            client.close()
            return
        finally:
            os.close(fd)
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def close(self) -> None:
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class QueueProxiedPod:
    """`user` (argv of a server on USER_PORT) behind a real queue-proxy for `revision`, in a
    namespace of its own. serving_address: queue-proxy's serving port; metrics_target: its
    request metrics (9091), for Prometheus."""

    def __init__(self, user: list[str], namespace: str, revision: str, workdir: Path, pod: str | None = None):
        self.user, self.namespace, self.revision = user, namespace, revision
        self.pod = pod or f"{revision}-deployment-0"
        self.dir = workdir
        self.procs: list[subprocess.Popen] = []
        self.forwarders: list[Forwarder] = []

    def start(self) -> "QueueProxiedPod":
        self.dir.mkdir(parents=True, exist_ok=True)
        # the namespace's holder; its line says it is in a namespace of its own with loopback up
        # (until then /proc/PID/ns/net may still be ours)
        holder = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo up && exec sleep 3600"],
                                  stdout=subprocess.PIPE, text=True)
        self.procs.append(holder)
        if holder.stdout.readline().strip() != "up":
            raise RuntimeError(f"the pod {self.pod}'s network namespace did not come up (unshare exited {holder.wait(5)})")
        enter = ["nsenter", f"--net=/proc/{holder.pid}/ns/net", "--"]
        serving, metrics, user = (Forwarder(holder.pid, p) for p in (SERVING_PORT, METRICS_PORT, USER_PORT))
        self.forwarders += [serving, metrics, user]
        self.serving_address, self.metrics_target = serving.address, metrics.address
        logs = (self.dir / f"{self.pod}-user.log", self.dir / f"{self.pod}-queue-proxy.log")
        container = subprocess.Popen(enter + self.user, stdout=open(logs[0], "ab"), stderr=subprocess.STDOUT)
        self.procs.append(container)
        env = {**os.environ, **queue_proxy_env(self.namespace, self.revision, self.pod)}
        sidecar = subprocess.Popen(enter + [queue_proxy_binary()], env=env, stdout=open(logs[1], "ab"), stderr=subprocess.STDOUT)
        self.procs.append(sidecar)
        wait_until_answers(f"http://{user.address}/v2/health/ready", container, "user container", logs[0])
        wait_until_answers(f"http://{metrics.address}/metrics", sidecar, "queue-proxy", logs[1])
        return self

    def stop(self) -> None:
        for f in self.forwarders:
            f.close()
        for p in reversed(self.procs):          # ours, by PID; queue-proxy would drain for 30 s on TERM
            if p.poll() is None:
                p.kill()
                p.wait(10)

    def __enter__(self) -> "QueueProxiedPod":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

