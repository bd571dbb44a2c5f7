"""One reconcile of one ModelRollout: observe -> plan -> apply.

The decisions are the pure planner's (and serving.py's, after a promotion or rollback); this
module only sequences the I/O, through adapters passed in.

- observe: the rollout, its InferenceService and the objects its router asks for
  (observation.py); a spec or InferenceService the operator cannot act on is refused here,
  traffic untouched (planner.refuse).
- plan: the looks that are due (looks.py) and the webhooks' answers, then planner.plan.
- apply: stable's mirror file while the shadow step runs (written before the status that
  records it, removed after), the status, then the InferenceService patch. Status goes first,
  so a crash in between leaves status ahead of routing and the next reconcile (planning the same
  from the same status) re-applies the routing: progress is never lost or applied twice. After a
  patch, status records the generation it left (only the apiserver's answer tells it), so that
  anyone else's change is told apart (ownership.py); a refused patch is recorded instead
  (routingError). A status write from a stale read gets 409 and changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import Any, Callable, Mapping, Protocol

import yaml

from .adapters.hooks import Hooks
from .adapters.isvc import merge_patch
from .adapters.kube import ConfigMapError, NotFound, RoutingError
from .adapters.traffic import ROUTERS
from .conditions import conditions
from .looks import Evaluate, Looks, Measure, MeasureShadow
from .metrics import OperatorMetrics
from .observation import Observation
from .ownership import record
from .phases import Phase
from .planner import Event, Plan, has_canary, plan, refuse, traffic_of
from .preflight import WAITS, refusal
from .schedule import gate_due, rollback_hooks_due, timestamp
from .serving import verify_serving
from .shadow import MIRROR_CONFIG_MAP, mirror_key, wanted_mirror
from .spec import RolloutSpec, SpecError, parse_spec
from .status import Status, parse_status
from .webhooks import HookAnswers

__all__ = ["Evaluate", "Kube", "Measure", "MeasureShadow", "Reconciler"]
log = logging.getLogger(__name__)
ROUTING_RETRY = 5.0  # seconds before trying a refused InferenceService patch again


def _degraded(status: Status) -> tuple[str, str] | None:
    if error := status.get("routingError"):
        return "RoutingFailed", error
    if error := status.get("servingError"):
        return "ServingMismatch", error
    return None


def _settling(rollout: dict, status: Status) -> bool:
    """Promoted in serverless mode, but not yet seen routed alone (serving.py)."""
    mode = ((rollout.get("spec") or {}).get("strategy") or {}).get("trafficMode", "serverless")
    return status.get("phase") == Phase.PROMOTED and mode == "serverless" and not status.get("servingVerified")


class Kube(Protocol):
    def get_rollout(self, namespace: str, name: str) -> dict: ...
    def write_status(self, rollout: dict, status: Mapping[str, Any]) -> dict: ...
    def get_isvc(self, namespace: str, name: str) -> dict: ...
    def patch_isvc(self, namespace: str, name: str, patch: dict) -> dict: ...
    def get_httproute(self, namespace: str, name: str) -> dict: ...
    def get_revision(self, namespace: str, name: str) -> dict: ...
    def set_config_map_key(self, namespace: str, name: str, key: str, value: str | None) -> None: ...
    def emit(self, rollout: dict, event: Event) -> None: ...


@dataclasses.dataclass
class Reconciler:
    kube: Kube
    measure: Measure
    metrics: OperatorMetrics
    evaluate: Evaluate | None = None  # None: no rollout may ask for the evaluation step
    hooks: Hooks | None = None  # None: no rollout may have webhooks or notifications
    shadow: MeasureShadow | None = None  # None: no rollout may ask for the shadow step
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)

    def __post_init__(self) -> None:
        self.looks = Looks(self.measure, self.metrics, self.evaluate, self.shadow)

    def __call__(self, namespace: str, name: str) -> float | None:
        """Returns seconds until this rollout next needs a look (None: only on change)."""
        started = time.perf_counter()
        try:
            return self._reconcile(namespace, name)
        finally:
            self.metrics.reconcile_duration.observe(time.perf_counter() - started)

    def _reconcile(self, namespace: str, name: str) -> float | None:
        try:
            rollout = self.kube.get_rollout(namespace, name)
        except NotFound:
            return None  # deleted meanwhile: nothing to do
        if rollout["metadata"].get("deletionTimestamp"):
            return None  # being deleted: revert() restores stable, nothing may undo it
        status, now = parse_status(rollout.get("status")), self.clock()
        seen = self._observe(rollout, status, now)
        if seen is None:
            return None  # refused: until the spec or InferenceService changes
        p, addresses = self._plan(rollout, status, seen)
        return self._apply(rollout, status, seen, p, addresses)

    # -- observe -------------------------------------------------------------------------------

    def _observe(self, rollout: dict, status: Status, now: dt.datetime) -> Observation | None:
        namespace = rollout["metadata"]["namespace"]
        try:
            spec = parse_spec(rollout.get("spec") or {})
        except SpecError as exc:
            self._write(rollout, status, refuse(status, "InvalidSpec", str(exc)), now)
            return None
        try:
            isvc = self.kube.get_isvc(namespace, spec.inference_service)
        except NotFound:
            self._write(rollout, status, refuse(status, "InferenceServiceNotFound", f"InferenceService {spec.inference_service!r} not found"), now)
            return None  # the resync looks again
        refused = refusal(spec, status, isvc)
        if refused:
            self._write(rollout, status, refuse(status, *refused, waiting=refused[0] in WAITS), now)
            return None
        router = ROUTERS[spec.traffic_mode]
        return Observation(namespace, spec, isvc, router, self._objects(namespace, router.observe(isvc)), now)

    def _objects(self, namespace: str, wanted: list[tuple[str, str]]) -> dict:
        """The platform objects a router asked for, by (kind, name); None where absent."""
        objects: dict = {}
        for kind, name in wanted:
            try:
                objects[(kind, name)] = getattr(self.kube, f"get_{kind}")(namespace, name)
            except NotFound:
                objects[(kind, name)] = None
        return objects

    # -- plan ----------------------------------------------------------------------------------

    def _plan(self, rollout: dict, status: Status, seen: Observation) -> tuple[Plan, dict | None]:
        """The plan, and the versions' addresses before traffic (for the mirror's file)."""
        spec, now = seen.spec, seen.now
        external, blocked = seen.external(status), seen.blocked(status)
        unjudgeable = has_canary(status) and bool(external or blocked)  # the plan rolls back, whatever is measured
        pending, addresses = seen.pending(status)
        verdict, guarded = (
            (None, False) if unjudgeable else self.looks.take(spec, status, seen.namespace, now, lambda: seen.revisions(status), addresses)
        )
        hooked = HookAnswers() if unjudgeable else self._ask_hooks(spec, rollout, status, now, pending)
        p = plan(
            spec,
            status,
            seen.serving,
            verdict,
            now,
            applied=pending is None,
            pending=pending or "",
            external=external,
            blocked=blocked,
            guarded=guarded,
            hooks=hooked,
            runtime=seen.stable_runtime,
        )
        # which rule decided: at INFO when it changed something a user sees, else at DEBUG
        log.log(
            logging.INFO if p.events else logging.DEBUG,
            "%s/%s: rule %r: %s -> %s%s",
            seen.namespace,
            rollout["metadata"]["name"],
            p.rule or "none",
            status.get("phase", Phase.IDLE.value),
            p.status.get("phase"),
            "".join(f"; {e.reason}" for e in p.events),
        )
        return p, addresses

    def _ask_hooks(self, spec: RolloutSpec, rollout: dict, status: Status, now: dt.datetime, pending: str | None) -> HookAnswers:
        """The gate webhooks when due (pre-rollout once the candidate runs at 0%), and the rollback ones."""
        if not spec.webhooks:
            return HookAnswers()
        if self.hooks is None:
            raise RuntimeError("a rollout has webhooks but this Reconciler has no hooks adapter")
        kind = status.get("gate")
        gate = self.hooks.gate(rollout, status, spec.webhooks, kind) if kind and gate_due(spec, status, now) and pending is None else None
        checked = rollback_hooks_due(spec, status, now)
        return HookAnswers(gate, self.hooks.asks_rollback(rollout, status, spec.webhooks) if checked else None, checked)

    # -- apply ---------------------------------------------------------------------------------

    def _apply(self, rollout: dict, status: Status, seen: Observation, p: Plan, addresses: dict | None) -> float | None:
        assert p.traffic is not None  # plan() always says where traffic goes
        spec, now = seen.spec, seen.now
        patch = seen.patch(p.traffic)
        patching = not seen.unchanged(patch)
        found, events = record(seen.isvc, patching), list(p.events)
        mirrored, failed = self._mirror(spec, seen.namespace, status, p.status, addresses)
        found.update(mirrored)
        events += failed
        if not patching:  # isvc is what KServe was asked for: its status can tell
            checked, mismatch = verify_serving(spec, p.status, *seen.routing(), now)
            found.update(checked)
            found["routingError"] = None
            events += mismatch + _routing_restored(spec, p.status)
        written = self._write(rollout, status, Plan({**p.status, **found}, p.traffic, tuple(events)), now)
        if not patching:
            return p.requeue_after
        try:
            patched = self._send(seen.namespace, spec, seen.isvc, patch)
        except RoutingError as exc:  # status says what was asked; the condition says it was refused
            self.metrics.routing_errors.inc()
            event = Event("Warning", "RoutingFailed", f"InferenceService {spec.inference_service!r} refused the patch: {exc}")
            stored = parse_status(written["status"])
            self._write(written, stored, Plan({**stored, "routingError": str(exc)}, p.traffic, (event,)), now)
            return ROUTING_RETRY
        # the generation the patch left, which only the apiserver's answer tells (ownership.py)
        stored = parse_status(written["status"])
        done: Status = {**record(patched, False), "routedAt": timestamp(now), "routingError": None}
        self._write(written, stored, Plan({**stored, **done}, p.traffic, tuple(_routing_restored(spec, stored))), now)
        return p.requeue_after

    def _mirror(self, spec: RolloutSpec, namespace: str, before: Status, after: Status, addresses: dict | None) -> tuple[Status, list[Event]]:
        """Stable's mirror file as the planned status wants it (shadow.wanted_mirror), written only
        when that differs from what status says was written; a refused write is kept in
        mirrorError and tried again at the next reconcile."""
        wanted, written = wanted_mirror(spec, after, addresses, before.get("mirror")), before.get("mirror")
        if wanted == written:
            return {}, []
        try:
            self.kube.set_config_map_key(
                namespace, MIRROR_CONFIG_MAP, mirror_key(spec.inference_service), None if wanted is None else yaml.safe_dump(wanted, sort_keys=True)
            )
        except ConfigMapError as exc:
            message = f"ConfigMap {MIRROR_CONFIG_MAP} refused the mirror's file: {exc}"
            return {"mirrorError": message}, [] if before.get("mirrorError") else [Event("Warning", "MirrorFailed", message)]
        return {"mirror": wanted, "mirrorError": None}, []

    def _write(self, rollout: dict, before: Status, p: Plan, now: dt.datetime) -> dict:
        """Writes the plan's status (and its events) if it changed; returns the rollout as stored."""
        meta = rollout["metadata"]
        generation = int(meta.get("generation") or 0)
        status: Status = {
            **p.status,
            "observedGeneration": generation,
            "conditions": conditions(
                p.status["phase"],
                p.status.get("message", ""),
                generation,
                timestamp(now),
                before.get("conditions"),
                _degraded(p.status),
                _settling(rollout, p.status),
            ),
        }
        stored = rollout.get("status") or {}
        if merge_patch(stored, status) != stored:  # as the apiserver merges it: a None only removes
            rollout = self.kube.write_status(rollout, status) or {**rollout, "status": merge_patch(stored, status)}
            for event in p.events:  # the planner emits only on transitions and verdicts
                self.kube.emit(rollout, event)
                self.metrics.transitions.labels(event.reason).inc()
                self._announce(rollout, status, event)
        self.metrics.observe(meta["namespace"], meta["name"], status)
        return rollout

    def _announce(self, rollout: dict, status: Status, event: Event) -> None:
        """Event and post-rollout webhooks and notifications: sent in the background, never blocking."""
        if self.hooks is None:
            return
        try:
            spec = parse_spec(rollout.get("spec") or {})
        except SpecError:
            return
        if spec.webhooks or spec.notifications:
            self.hooks.announce(rollout, status, event, spec.webhooks, spec.notifications)

    def _send(self, namespace: str, spec: RolloutSpec, isvc: dict, patch: dict) -> dict:
        """The patch, with the resourceVersion read (a stale replica's patch is refused: 409)."""
        precondition = {"metadata": {"resourceVersion": (isvc.get("metadata") or {}).get("resourceVersion")}}
        return self.kube.patch_isvc(namespace, spec.inference_service, {**patch, **precondition})

    # -- deletion ------------------------------------------------------------------------------

    def revert(self, rollout: dict) -> str:
        """The ModelRollout is being deleted: a canary it left in the InferenceService goes, and
        stable serves all (as Flagger's revertOnDeletion). Returns what was done."""
        status = parse_status(rollout.get("status"))
        if not status.get("canaryVersion") or not status.get("stableVersion"):
            return "no canary to remove"
        spec = parse_spec(rollout.get("spec") or {})
        namespace = rollout["metadata"]["namespace"]
        if status.get("mirror"):  # stable stops mirroring to a candidate about to go
            self.kube.set_config_map_key(namespace, MIRROR_CONFIG_MAP, mirror_key(spec.inference_service), None)
        try:
            isvc = self.kube.get_isvc(namespace, spec.inference_service)
        except NotFound:
            return "the InferenceService is gone"
        router = ROUTERS[spec.traffic_mode]
        seen = Observation(namespace, spec, isvc, router, self._objects(namespace, router.observe(isvc)), self.clock())
        patch = seen.patch(dataclasses.replace(traffic_of(status), canary_weight=0))
        if not seen.unchanged(patch):
            self._send(namespace, spec, isvc, patch)
        return f"{status['canaryVersion']} removed, {status['stableVersion']} takes all traffic"


def _routing_restored(spec: RolloutSpec, s: Status) -> list[Event]:
    if not s.get("routingError"):
        return []
    return [Event("Normal", "RoutingRestored", f"InferenceService {spec.inference_service!r} accepts the patch again")]
