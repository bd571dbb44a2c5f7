"""kubectl-modelrollout: `kubectl modelrollout get|status|promote|abort|retry|pause|resume`.

A kubectl plugin (kubectl runs any `kubectl-*` on PATH; pyproject installs this one). It reads
the kubeconfig as kubectl does (KUBECONFIG, --kubeconfig, --context) and talks to the apiserver
with the official client; edits are JSON merge patches of the spec (actions.py), which the
operator acts on, as `kubectl patch` would.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Iterator, cast

import kubernetes
from kubernetes.client.rest import ApiException

from .actions import ACTIONS, NotNow
from .screen import ICONS, render

GROUP, VERSION, PLURAL = "serving.modelrollout.io", "v1alpha1", "modelrollouts"
DONE = {"Idle": 0, "Promoted": 0, "RolledBack": 1, "Failed": 1}  # status --watch: exit code when it ends
TIMED_OUT = 2


class Cluster:
    """The few calls the plugin makes, on the user's kubeconfig."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None):
        kubernetes.config.load_kube_config(config_file=kubeconfig, context=context)
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        self.namespace = namespace or (chosen or {}).get("context", {}).get("namespace") or "default"
        self.custom = kubernetes.client.CustomObjectsApi()
        self.core = kubernetes.client.CoreV1Api()

    def get(self, name: str) -> dict:
        return cast(dict, self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name))

    def rollouts(self) -> list[dict]:
        listed = cast(dict, self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL))
        return listed["items"]

    def patch(self, name: str, body: dict) -> dict:
        return cast(dict, self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, body))

    def events(self, name: str) -> list[dict]:
        raw = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.kind=ModelRollout,involvedObject.name={name}", _preload_content=False
        )
        return json.loads(cast(Any, raw).data)["items"]  # unparsed: events.k8s.io fields kept

    def watch(self, name: str, timeout: float) -> Iterator[dict]:
        """The rollout as first read, then at each change, until `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        obj = self.get(name)
        yield obj
        while (left := deadline - time.monotonic()) > 0:
            stream = kubernetes.watch.Watch().stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=obj["metadata"]["resourceVersion"],
                timeout_seconds=max(1, int(min(left, 60))),
            )
            for event in stream:
                if event["type"] in ("ADDED", "MODIFIED"):
                    obj = event["object"]
                    yield obj
                elif event["type"] == "DELETED":
                    raise SystemExit(f"modelrollout {name!r} was deleted")
                if time.monotonic() >= deadline:
                    return
            obj = self.get(name)  # the stream ended (server timeout): read again


def summary(rollout: dict) -> list[str]:
    s, spec = rollout.get("status") or {}, rollout.get("spec") or {}
    steps = (spec.get("strategy") or {}).get("steps") or []
    step = f"{int(s.get('currentStep') or 0) + 1}/{len(steps)}" if s.get("canaryVersion") else "-"
    return [
        rollout["metadata"]["name"],
        s.get("phase", ""),
        s.get("stableVersion", ""),
        s.get("canaryVersion") or "-",
        f"{int(s.get('canaryWeight') or 0)}%",
        step,
        s.get("message", ""),
    ]


def status_line(rollout: dict) -> str:
    s = rollout.get("status") or {}
    phase = s.get("phase", "(not reconciled yet)")
    return f"{ICONS.get(phase, '')} {phase}: {s.get('message', '')}".strip()


def cmd_get(cluster: Cluster, args: argparse.Namespace, out: Any) -> int:
    if not args.name:
        rows = [["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "STEP", "MESSAGE"]] + [summary(r) for r in cluster.rollouts()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out.write("".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows))
        return 0
    if not args.watch:
        out.write(render(cluster.get(args.name), cluster.events(args.name)))
        return 0
    for obj in cluster.watch(args.name, args.timeout):
        if out.isatty():
            out.write("\033[H\033[2J")  # redraw in place, as `kubectl argo rollouts get --watch`
        out.write(render(obj, cluster.events(args.name)) + ("" if out.isatty() else "---\n"))
        out.flush()
    return 0


def cmd_status(cluster: Cluster, args: argparse.Namespace, out: Any) -> int:
    """One line; with --watch, a line per change until the rollout ends: exit 0 promoted (or idle),
    1 rolled back or failed, 2 when --timeout passes first (for CI scripts)."""
    if not args.watch:
        out.write(status_line(cluster.get(args.name)) + "\n")
        return 0
    last = None
    for obj in cluster.watch(args.name, args.timeout):
        line = status_line(obj)
        if line != last:
            out.write(line + "\n")
            out.flush()
            last = line
        s, meta = obj.get("status") or {}, obj["metadata"]
        settled = s.get("observedGeneration") == meta.get("generation") and s.get("phase") in DONE
        if settled and not (s["phase"] == "Promoted" and _settling(obj)):
            return DONE[s["phase"]]
    out.write(f"timed out after {args.timeout:g}s\n")
    return TIMED_OUT


def _settling(obj: dict) -> bool:
    """Promoted in serverless mode but KServe does not route it alone yet (conditions.py)."""
    return any(c.get("type") == "Reconciling" and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or [])


def cmd_action(cluster: Cluster, args: argparse.Namespace, out: Any) -> int:
    rollout = cluster.get(args.name)
    body = ACTIONS[args.command](rollout)
    cluster.patch(args.name, body)
    out.write(f"modelrollout {args.name!r} {args.command}: spec {json.dumps(body['spec'])}\n")
    return 0


def parser() -> argparse.ArgumentParser:
    # kubectl passes a plugin only what follows its name, so these go before or after the command
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS)
    common.add_argument("--context", default=argparse.SUPPRESS)
    p = argparse.ArgumentParser(prog="kubectl modelrollout", description="Watch and steer ModelRollouts.", parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    get = sub.add_parser("get", parents=[common], help="the rollout's screen (steps, weights, verdicts and figures); no name: a list")
    get.add_argument("name", nargs="?")
    status = sub.add_parser("status", parents=[common], help="one line; --watch waits for the rollout to end (exit 0 promoted, 1 rolled back)")
    status.add_argument("name")
    for cmd in (get, status):
        cmd.add_argument("-w", "--watch", action="store_true")
        cmd.add_argument("--timeout", type=float, default=3600.0, help="seconds --watch lasts [3600]")
    for name, fn in ACTIONS.items():
        sub.add_parser(name, parents=[common], help=(fn.__doc__ or "").strip() or None).add_argument("name")
    return p


def main(argv: list[str] | None = None, out: Any = None) -> int:
    args = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        cluster = Cluster(*(getattr(args, a, None) for a in ("kubeconfig", "context", "namespace")))
        run = {"get": cmd_get, "status": cmd_status}.get(args.command, cmd_action)
        return run(cluster, args, out)
    except NotNow as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ApiException as e:
        reason = (json.loads(e.body).get("message") if e.body and e.body.startswith("{") else None) or e.reason
        print(f"error: {reason}", file=sys.stderr)
        return 1
    except kubernetes.config.ConfigException as e:
        print(f"error: kubeconfig: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
