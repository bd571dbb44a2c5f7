"""A network namespace with only loopback, for the control plane and everything that talks to it.

Kubernetes hands out private-range addresses: Services get ClusterIPs, kwok gives pods IPs, and
validation refuses loopback endpoints. Knative's autoscaler dials pod IPs to scrape them and the
apiserver dials a webhook Service's ClusterIP. In this namespace a dial to a pod IP fails at once
(no route), so no packet can leave the machine, and the Service range is routed to loopback, so a
webhook listening there is reached at its ClusterIP as in a cluster (kube-proxy's part, stood in).

`isolate()` moves the calling process (and every process it starts later) into a new namespace.
It needs root, or CAP_SYS_ADMIN; tests call it from conftest.py before any thread starts.
"""
from __future__ import annotations

import ctypes
import os
import socket
import subprocess

CLONE_NEWNET = 0x40000000
SERVICE_CIDR = "10.96.0.0/16"     # kube-apiserver --service-cluster-ip-range; routed to lo in here
POD_CIDR = "10.244.0.0/24"        # kwok --cidr; unroutable in here
MARK = "MODELROLLOUT_NETNS"       # set once isolated, so children know (and the demo can say so)


def isolated() -> bool:
    """True when this process runs in a namespace made by isolate()."""
    return os.environ.get(MARK) == str(os.stat("/proc/self/ns/net").st_ino) and \
        [name for _, name in socket.if_nameindex()] == ["lo"]


def isolate() -> None:
    if isolated():
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise PermissionError(err, f"unshare(CLONE_NEWNET) failed ({os.strerror(err)}): the local control plane "
                                   "runs in a network namespace of its own, which needs root (CAP_SYS_ADMIN)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "route", "add", "local", SERVICE_CIDR, "dev", "lo"], check=True)
    os.environ[MARK] = str(os.stat("/proc/self/ns/net").st_ino)


def enter_command(pid: int | None = None) -> str:
    """How another shell joins this namespace (to run kubectl against the control plane)."""
    return f"nsenter --net=/proc/{pid or os.getpid()}/ns/net"
