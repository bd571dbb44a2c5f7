"""One reconcile of one ModelRollout: observe -> plan -> write status -> patch -> record.

The decisions are the pure planner's; this module only sequences the I/O, through adapters
passed in. It observes the rollout, its InferenceService and the Knative revisions KServe's status
names (the storageUri each runs), and from them whether someone else changed the InferenceService
mid-rollout (ownership.py) and whether a canary would split against stable (the router's
blocked()). Status is written before the InferenceService, so a crash in between leaves status
ahead of routing, and the next reconcile (planning the same from the same status) re-applies the
routing: progress is never lost or applied twice. After a patch, status records the generation
it left, so that anyone else's change is told apart. A status write from a stale read gets 409
and changes nothing. After a serverless promotion or rollback, every reconcile checks that the
revisions KServe routes to run stable. While the shadow step runs, it writes stable's mirror
file (ConfigMap modelrollout-shadow) before the status that records it, and removes it after.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import Callable, Protocol

import yaml

from .adapters.autoscaling import stable_scale
from .adapters.hooks import Hooks
from .adapters.isvc import all_to, merge_patch, served, shown
from .adapters.kube import ConfigMapError, NotFound, RoutingError
from .adapters.traffic import ROUTERS, Router
from .analysis import ERROR, Measurements, Verdict, Window, judge
from .builds import Build
from .guardrail import guard, guard_alpha, guard_due
from .conditions import conditions
from .metrics import OperatorMetrics
from .ownership import external_change, record
from .phases import BEFORE_TRAFFIC, HELD
from .planner import Event, Plan, has_canary, plan, traffic_of
from .schedule import (analysis_due, analysis_window, evaluation_due, gate_due, look_alpha, parse_time,
                       rollback_hooks_due, shadow_due, shadow_look_alpha, timestamp)
from .shadow import MIRROR_CONFIG_MAP, ShadowSample, judge_shadow, mirror_key, wanted_mirror
from .preflight import WAITS, refusal
from .spec import RolloutSpec, SpecError, parse_spec
from .webhooks import HookAnswers


log = logging.getLogger(__name__)
SETTLE_SECONDS = 30.0  # after a patch, how long KServe may take before a promotion or rollback it does not show is reported


def _degraded(status: dict) -> tuple[str, str] | None:
    if status.get("routingError"):
        return "RoutingFailed", status["routingError"]
    if status.get("servingError"):
        return "ServingMismatch", status["servingError"]
    return None


def _settling(rollout: dict, status: dict) -> bool:
    """Promoted in serverless mode, but not yet seen routed alone (_check_serving)."""
    mode = ((rollout.get("spec") or {}).get("strategy") or {}).get("trafficMode", "serverless")
    return status.get("phase") == "Promoted" and mode == "serverless" and not status.get("servingVerified")


def _unchanged(isvc: dict, patch: dict) -> bool:
    return merge_patch(isvc, patch) == isvc


class Kube(Protocol):
    def get_rollout(self, namespace: str, name: str) -> dict: ...
    def write_status(self, rollout: dict, status: dict) -> dict: ...
    def get_isvc(self, namespace: str, name: str) -> dict: ...
    def patch_isvc(self, namespace: str, name: str, patch: dict) -> dict: ...
    def get_httproute(self, namespace: str, name: str) -> dict: ...
    def get_revision(self, namespace: str, name: str) -> dict: ...
    def set_config_map_key(self, namespace: str, name: str, key: str, value: str | None) -> None: ...
    def emit(self, rollout: dict, event: Event) -> None: ...


ROUTING_RETRY = 5.0   # seconds before trying a refused InferenceService patch again

# (spec, canary version, stable version (None: the canary alone), window, namespace,
# {version: Knative revisions running it}) -> what Prometheus says about them
Measure = Callable[[RolloutSpec, str, str | None, Window, str, dict[str, tuple[str, ...]]], Measurements]
# (spec, namespace, {"candidate": url, "stable": url}) -> the evaluation step's verdict
Evaluate = Callable[[RolloutSpec, str, dict], Verdict]
# (spec, namespace, stable version, window) -> (what stable's mirror counted, an error reading it)
MeasureShadow = Callable[[RolloutSpec, str, str, Window], tuple[ShadowSample | None, str | None]]


@dataclasses.dataclass
class Reconciler:
    kube: Kube
    measure: Measure
    metrics: OperatorMetrics
    evaluate: Evaluate | None = None    # None: no rollout may ask for the evaluation step
    hooks: Hooks | None = None          # None: no rollout may have webhooks or notifications
    shadow: MeasureShadow | None = None     # None: no rollout may ask for the shadow step
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)

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
            return None                                 # deleted meanwhile: nothing to do
        if rollout["metadata"].get("deletionTimestamp"):
            return None                                 # being deleted: revert() restores stable, nothing may undo it
        status = dict(rollout.get("status") or {})
        now = self.clock()
        try:
            spec = parse_spec(rollout.get("spec") or {})
        except SpecError as exc:
            self._fail(rollout, status, "InvalidSpec", str(exc), now)
            return None                                 # until the spec changes
        try:
            isvc = self.kube.get_isvc(namespace, spec.inference_service)
        except NotFound:
            self._fail(rollout, status, "InferenceServiceNotFound", f"InferenceService {spec.inference_service!r} not found", now)
            return None                                 # the resync looks again
        refused = refusal(spec, status, isvc)
        if refused:
            self._fail(rollout, status, *refused, now, phase="Waiting" if refused[0] in WAITS else "Failed")
            return None
        router = ROUTERS[spec.traffic_mode]
        observed = self._observe(namespace, router.observe(isvc))
        scale = stable_scale(spec.autoscaling)
        stable = traffic_of(status).stable_build if status.get("stableVersion") else Build(router.serving(isvc)[1])
        blocked = router.blocked(isvc, stable, observed)
        external = status.get("stableVersion") and external_change(
            status, isvc, _unchanged(isvc, router.patch(isvc, traffic_of(status), scale, observed)))
        unjudgeable = has_canary(status) and bool(external or blocked)    # the plan rolls back whatever is measured
        verdict = None
        if analysis_due(spec, status, now) and not unjudgeable:
            t0 = time.perf_counter()
            window = Window(*(t.timestamp() for t in analysis_window(spec, status, now)))
            measured = self.measure(spec, status["canaryVersion"], status["stableVersion"], window, namespace,
                                    self._revisions(router, isvc, observed, status))
            verdict = judge(spec.analysis, measured, alpha=look_alpha(spec, status), evidence=status.get("evidence") or status.get("errorEvidence"))
            self.metrics.analysis_duration.observe(time.perf_counter() - t0)
            self.metrics.decisions.labels(verdict.outcome).inc()
        guarded = verdict is None and guard_due(spec, status, now) and not unjudgeable
        if guarded:                             # the hold's cheap look: the canary since the step started
            step_started = parse_time(status["stepStartedAt"])
            assert step_started is not None                 # guard_due: only once the step is served
            started = step_started.timestamp()
            measured = self.measure(spec, status["canaryVersion"], None, Window(started, now.timestamp(), started),
                                    namespace, self._revisions(router, isvc, observed, status))
            verdict = guard(spec, measured, guard_alpha(spec, status))
            if verdict is not None:
                self.metrics.decisions.labels(verdict.outcome).inc()
        pending, addresses = self._pending(spec, router, isvc, status, observed)
        if addresses and evaluation_due(spec, status, now) and not unjudgeable:
            if self.evaluate is None:
                raise RuntimeError("a rollout asks for the evaluation step but this Reconciler has no evaluate adapter")
            verdict = self.evaluate(spec, namespace, addresses)
            self.metrics.decisions.labels(verdict.outcome).inc()
        if addresses and shadow_due(spec, status, now) and not unjudgeable:
            verdict = self._shadow_look(spec, namespace, status, now)
        hooked = self._ask_hooks(spec, rollout, status, now, pending, unjudgeable)
        p = plan(spec, status, router.serving(isvc), verdict, now, applied=pending is None, pending=pending or "",
                 external=external or None, blocked=blocked, guarded=guarded, hooks=hooked,
                 runtime=router.stable_runtime(isvc, observed))
        assert p.traffic is not None                    # plan() always says where traffic goes
        # which rule decided: at INFO when it changed something a user sees, else at DEBUG
        log.log(logging.INFO if p.events else logging.DEBUG, "%s/%s: rule %r: %s -> %s%s", namespace, name,
                p.rule or "none", status.get("phase", "Idle"), p.status.get("phase"),
                "".join(f"; {e.reason}" for e in p.events))
        patch = router.patch(isvc, p.traffic, scale, observed)
        patching = not _unchanged(isvc, patch)
        found, events = record(isvc, patching), list(p.events)
        mirrored, failed = self._mirror(spec, namespace, status, p.status, addresses)
        found.update(mirrored)
        events += failed
        if not patching:                           # isvc is what KServe was asked for: its status can tell
            checked, mismatch = self._check_serving(spec, router, isvc, observed, p.status, now)
            found.update(checked, routingError=None)
            events += mismatch + self._routing_restored(spec, p.status)
        written = self._finish(rollout, status, Plan({**p.status, **found}, p.traffic, tuple(events)), now)
        if not patching:
            return p.requeue_after
        try:
            patched = self._send(namespace, spec, isvc, patch)
        except RoutingError as exc:       # status says what was asked; the condition says it was refused
            self.metrics.routing_errors.inc()
            event = Event("Warning", "RoutingFailed", f"InferenceService {spec.inference_service!r} refused the patch: {exc}")
            self._finish(written, written["status"], Plan({**written["status"], "routingError": str(exc)}, p.traffic,
                                                          (event,)), now)
            return ROUTING_RETRY
        done = {**record(patched, False), "routedAt": timestamp(now), "routingError": None}
        self._finish(written, written["status"], Plan({**written["status"], **done}, p.traffic,
                                                      tuple(self._routing_restored(spec, written["status"]))), now)
        return p.requeue_after

    def _shadow_look(self, spec: RolloutSpec, namespace: str, status: dict, now: dt.datetime) -> Verdict:
        """The shadow step's verdict on everything stable's mirror counted since it was turned on."""
        if self.shadow is None:
            raise RuntimeError("a rollout asks for the shadow step but this Reconciler has no shadow adapter")
        assert spec.shadow is not None
        started = parse_time(status["shadowStartedAt"])
        assert started is not None                          # shadow_due: only once the mirror is on
        since = started.timestamp()
        sample, error = self.shadow(spec, namespace, status["stableVersion"], Window(since, now.timestamp(), since))
        verdict = Verdict(ERROR, error) if error else judge_shadow(spec.shadow, sample, shadow_look_alpha(spec, status))
        self.metrics.decisions.labels(verdict.outcome).inc()
        return verdict

    def _mirror(self, spec: RolloutSpec, namespace: str, before: dict, after: dict,
                addresses: dict | None) -> tuple[dict, list[Event]]:
        """Stable's mirror file as the planned status wants it (shadow.wanted_mirror), written only
        when that differs from what status says was written; a refused write is kept in
        mirrorError and tried again at the next reconcile."""
        wanted, written = wanted_mirror(spec, after, addresses, before.get("mirror")), before.get("mirror")
        if wanted == written:
            return {}, []
        try:
            self.kube.set_config_map_key(namespace, MIRROR_CONFIG_MAP, mirror_key(spec.inference_service),
                                         None if wanted is None else yaml.safe_dump(wanted, sort_keys=True))
        except ConfigMapError as exc:
            message = f"ConfigMap {MIRROR_CONFIG_MAP} refused the mirror's file: {exc}"
            return {"mirrorError": message}, [] if before.get("mirrorError") else [Event("Warning", "MirrorFailed", message)]
        return {"mirror": wanted, "mirrorError": None}, []

    @staticmethod
    def _routing_restored(spec: RolloutSpec, s: dict) -> list[Event]:
        if not s.get("routingError"):
            return []
        return [Event("Normal", "RoutingRestored", f"InferenceService {spec.inference_service!r} accepts the patch again")]

    def _check_serving(self, spec: RolloutSpec, router: Router, isvc: dict, observed: dict, s: dict,
                       now: dt.datetime) -> tuple[dict, list[Event]]:
        """After a serverless promotion or rollback: the revisions KServe routes to run the stable
        storageUri, and KServe's bookkeeping routes there next (its status once showed stable alone
        while it was about to send the rolled-out candidate everything). Until they do (past
        SETTLE_SECONDS since the last patch) the rollout is Failed,
        reason ServingMismatch, never Promoted or RolledBack; it returns once KServe catches up."""
        if spec.traffic_mode != "serverless" or s.get("phase") not in ("Promoted", "RolledBack"):
            return {}, []
        routing = served(isvc, {name: obj for (_, name), obj in observed.items() if obj})
        if routing is None:
            return {}, []                           # KServe has not caught up yet: look again later
        stable, coming = traffic_of(s).stable_build, router.next_split(isvc, observed)
        if all_to(routing, stable) and all_to(coming, stable):     # and KServe's next reconcile will not replace it
            if not s.get("servingError"):
                return {"servingVerified": True}, []
            return {"servingVerified": True, "servingError": None}, [
                Event("Normal", "ServingRestored", f"KServe routes all traffic to {stable.describe()} again")]
        routed = parse_time(s.get("routedAt"))
        if routed is not None and (now - routed).total_seconds() < SETTLE_SECONDS:
            return {"servingVerified": None}, []    # KServe may still be applying the last patch
        now_routed = not all_to(routing, stable) or coming is None
        split = routing if now_routed else coming or []     # what it routes, or will
        message = (f"KServe {'routes' if now_routed else 'is about to route'} "
                   f"{shown(split)}; stable {stable.describe()} should serve all")
        # reported once: _finish writes (and announces) status only when it changes
        return {"servingVerified": None, "servingError": message, "phase": "Failed", "resumePhase": s["phase"]}, [
            Event("Warning", "ServingMismatch", message)]

    def _ask_hooks(self, spec: RolloutSpec, rollout: dict, status: dict, now: dt.datetime, pending: str | None,
                   unjudgeable: bool) -> HookAnswers:
        """The gate webhooks when due (pre-rollout once the candidate runs at 0%), and the rollback ones."""
        if not spec.webhooks or unjudgeable:
            return HookAnswers()
        if self.hooks is None:
            raise RuntimeError("a rollout has webhooks but this Reconciler has no hooks adapter")
        gate = self.hooks.gate(rollout, status, spec.webhooks, status["gate"]) \
            if gate_due(spec, status, now) and pending is None else None
        checked = rollback_hooks_due(spec, status, now)
        return HookAnswers(gate, self.hooks.asks_rollback(rollout, status, spec.webhooks) if checked else None, checked)

    def _announce(self, rollout: dict, status: dict, event: Event) -> None:
        """Event and post-rollout webhooks and notifications: sent in the background, never blocking."""
        if self.hooks is None:
            return
        try:
            spec = parse_spec(rollout.get("spec") or {})
        except SpecError:
            return
        if spec.webhooks or spec.notifications:
            self.hooks.announce(rollout, status, event, spec.webhooks, spec.notifications)

    def _pending(self, spec: RolloutSpec, router: Router, isvc: dict, status: dict,
                 observed: dict) -> tuple[str | None, dict | None]:
        """(what keeps KServe from serving the status's canary weight, None when it does; before
        traffic, the versions' addresses once both have one)."""
        if status.get("phase") in BEFORE_TRAFFIC and status.get("canaryVersion"):
            addresses, missing = router.addresses(isvc, traffic_of(status), observed)
            return (None, addresses) if addresses else (missing, None)
        if status.get("gate") == "pre-rollout" and status.get("canaryVersion"):
            if spec.traffic_mode != "serverless":
                return None, None       # KServe runs no pods for a 0% canary: asked before it is written
            return router.pending(isvc, traffic_of(status), observed), None    # its revision ready at 0%
        if not status.get("canaryVersion") or not int(status.get("canaryWeight") or 0):
            return "no canary weight to serve", None
        return router.pending(isvc, traffic_of(status), observed), None

    @staticmethod
    def _revisions(router: Router, isvc: dict, observed: dict, status: dict) -> dict[str, tuple[str, ...]]:
        """{version: the Knative revisions running it}, for providers that read revisions."""
        running, traffic = router.revisions(isvc, observed), traffic_of(status)
        builds = {status["canaryVersion"]: traffic.canary_build, status["stableVersion"]: traffic.stable_build}
        return {version: tuple(name for name, runs in running if build is not None and build.matches(runs))
                for version, build in builds.items()}

    def _observe(self, namespace: str, wanted: list[tuple[str, str]]) -> dict:
        """The platform objects a router asked for, by (kind, name); None where absent."""
        observed: dict = {}
        for kind, name in wanted:
            try:
                observed[(kind, name)] = getattr(self.kube, f"get_{kind}")(namespace, name)
            except NotFound:
                observed[(kind, name)] = None
        return observed

    def revert(self, rollout: dict) -> str:
        """The ModelRollout is being deleted: a canary it left in the InferenceService goes, and
        stable serves all (as Flagger's revertOnDeletion). Returns what was done."""
        status = rollout.get("status") or {}
        if not status.get("canaryVersion") or not status.get("stableVersion"):
            return "no canary to remove"
        spec = parse_spec(rollout.get("spec") or {})
        namespace = rollout["metadata"]["namespace"]
        if status.get("mirror"):                # stable stops mirroring to a candidate about to go
            self.kube.set_config_map_key(namespace, MIRROR_CONFIG_MAP, mirror_key(spec.inference_service), None)
        try:
            isvc = self.kube.get_isvc(namespace, spec.inference_service)
        except NotFound:
            return "the InferenceService is gone"
        traffic = dataclasses.replace(traffic_of(status), canary_weight=0)
        router = ROUTERS[spec.traffic_mode]
        patch = router.patch(isvc, traffic, stable_scale(spec.autoscaling), self._observe(namespace, router.observe(isvc)))
        if not _unchanged(isvc, patch):
            self._send(namespace, spec, isvc, patch)
        return f"{status['canaryVersion']} removed, {status['stableVersion']} takes all traffic"

    def _fail(self, rollout: dict, status: dict, reason: str, message: str, now: dt.datetime,
              phase: str = "Failed") -> None:
        """Phase Failed (or Waiting), traffic untouched; resumePhase remembers where to carry on."""
        resume = status.get("resumePhase") if status.get("phase") in HELD else status.get("phase")
        event = Event("Normal" if phase == "Waiting" else "Warning", reason, message)
        self._finish(rollout, status, Plan({**status, "phase": phase, "resumePhase": resume, "message": message},
                                           None, (event,)), now)

    def _finish(self, rollout: dict, before: dict, p: Plan, now: dt.datetime) -> dict:
        """Writes the plan's status (and its events) if it changed; returns the rollout as stored."""
        meta = rollout["metadata"]
        generation = int(meta.get("generation") or 0)
        status = {**p.status, "observedGeneration": generation,
                  "conditions": conditions(p.status["phase"], p.status.get("message", ""), generation, timestamp(now),
                                           before.get("conditions"), _degraded(p.status), _settling(rollout, p.status))}
        stored = rollout.get("status") or {}
        if merge_patch(stored, status) != stored:   # as the apiserver merges it: a None only removes
            rollout = self.kube.write_status(rollout, status) or {**rollout, "status": merge_patch(stored, status)}
            for event in p.events:                  # the planner emits only on transitions and verdicts
                self.kube.emit(rollout, event)
                self.metrics.transitions.labels(event.reason).inc()
                self._announce(rollout, status, event)
        self.metrics.observe(meta["namespace"], meta["name"], status)
        return rollout

    def _send(self, namespace: str, spec: RolloutSpec, isvc: dict, patch: dict) -> dict:
        """The patch, with the resourceVersion read (a stale replica's patch is refused: 409)."""
        precondition = {"metadata": {"resourceVersion": (isvc.get("metadata") or {}).get("resourceVersion")}}
        return self.kube.patch_isvc(namespace, spec.inference_service, {**patch, **precondition})
