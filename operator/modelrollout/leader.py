"""One writer at a time: the operator runs only while it holds a coordination.k8s.io Lease
(the kubernetes client's LeaderElection, as controller-runtime's leader election). A second
replica waits; a leader that cannot renew exits, so two operators never reconcile together.
Every write also carries the resourceVersion it was based on (adapters/kube.py), so even a
leader that has just lost the Lease cannot overwrite newer state.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Callable

from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

log = logging.getLogger("modelrollout.leader")
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 15, 10, 2


def lease_name(namespaces: list[str]) -> str:
    """Operators watching different namespaces do not compete; the cluster-wide one has its own."""
    return "-".join(["modelrollout-operator", *sorted(namespaces)])[:253]


def lead(lease: str, namespace: str, run: Callable[[], None]) -> None:
    """Calls run() once this process holds the Lease; ends the process when run() returns (a
    signal stopped it) or when the Lease is lost."""
    identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    def started() -> None:
        log.info("leading as %s (Lease %s/%s)", identity, namespace, lease)
        try:
            run()
        finally:
            os._exit(0)  # stop renewing too: the process is done

    def stopped() -> None:
        log.error("lost the Lease %s/%s: exiting so that only one operator writes", namespace, lease)
        os._exit(1)

    log.info("waiting for the Lease %s/%s as %s", namespace, lease, identity)
    leaderelection.LeaderElection(
        electionconfig.Config(
            LeaseLock(lease, namespace, identity),
            lease_duration=LEASE_SECONDS,
            renew_deadline=RENEW_SECONDS,
            retry_period=RETRY_SECONDS,
            onstarted_leading=started,
            onstopped_leading=stopped,
        )
    ).run()
