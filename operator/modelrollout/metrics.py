"""The operator's own Prometheus metrics (served on --metrics-port, default 9090 -> 8000 in the chart)."""

from __future__ import annotations

import threading
from typing import Any, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .phases import Phase

PHASES: tuple[str, ...] = tuple(Phase)


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rollouts = Gauge("modelrollout_rollouts", "ModelRollouts by phase", ["phase"], registry=r)
        self.canary_weight = Gauge(
            "modelrollout_canary_weight_percent", "The canary's traffic share", ["namespace", "name", "stable_version", "canary_version"], registry=r
        )
        self.decisions = Counter("modelrollout_decisions_total", "Analysis verdicts", ["verdict"], registry=r)
        self.transitions = Counter("modelrollout_transitions_total", "Rollout events by reason", ["reason"], registry=r)
        self.analysis_duration = Histogram(
            "modelrollout_analysis_duration_seconds",
            "Time to query and judge one analysis",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.reconcile_duration = Histogram(
            "modelrollout_reconcile_duration_seconds",
            "Time of one reconcile",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.leader = Gauge("modelrollout_leader", "1 while this operator holds the leader-election Lease and reconciles", registry=r)
        self.routing_errors = Counter("modelrollout_routing_errors_total", "InferenceService patches the apiserver refused", registry=r)
        self.reconcile_errors = Counter("modelrollout_reconcile_errors_total", "Reconciles that raised", ["error"], registry=r)
        self.evaluation_score = Gauge(
            "modelrollout_evaluation_score",
            "The evaluation step's score on the holdout (role: candidate or stable)",
            ["namespace", "name", "version", "role", "metric"],
            registry=r,
        )
        self.webhook_calls = Counter(
            "modelrollout_webhook_calls_total",
            "Webhook calls by type and outcome (ok, refused: a non-2xx answer, failed: none)",
            ["type", "outcome"],
            registry=r,
        )
        self.notification_failures = Counter(
            "modelrollout_notification_failures_total",
            "Notifications and event/post-rollout webhooks not delivered (never blocking)",
            ["kind"],
            registry=r,
        )
        self._phases: dict[tuple[str, str], str] = {}
        self._scores: dict[tuple[str, str], list[tuple[str, ...]]] = {}
        self._weights: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()
        for phase in PHASES:
            self.rollouts.labels(phase).set(0)

    def observe(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        key = (namespace, name)
        labels = (str(status.get("stableVersion") or ""), str(status.get("canaryVersion") or ""))
        with self._lock:
            self._phases[key] = status.get("phase") or "Idle"
            if key in self._weights and self._weights[key] != labels:
                self.canary_weight.remove(*key, *self._weights[key])
            self._weights[key] = labels
            self.canary_weight.labels(*key, *labels).set(int(status.get("canaryWeight") or 0))
            self._score(key, status.get("evaluation") or {})
            self._recount()

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        with self._lock:
            self._phases.pop(key, None)
            if key in self._weights:
                self.canary_weight.remove(*key, *self._weights.pop(key))
            self._score(key, {})
            self._recount()

    def _score(self, key: tuple[str, str], evaluation: dict) -> None:
        """The last evaluation's two scores, labelled with the versions they belong to."""
        for labels in self._scores.pop(key, []):
            self.evaluation_score.remove(*key, *labels)
        if "candidate" not in evaluation or "stable" not in evaluation:
            return
        metric = str(evaluation.get("metric") or "")
        self._scores[key] = [
            (str(evaluation.get("version") or ""), "candidate", metric),
            (str(evaluation.get("stableVersion") or ""), "stable", metric),
        ]
        for labels, value in zip(self._scores[key], (evaluation["candidate"], evaluation["stable"])):
            self.evaluation_score.labels(*key, *labels).set(float(value))

    def _recount(self) -> None:
        counts: dict[str, int] = {phase: 0 for phase in PHASES}
        for phase in self._phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, n in counts.items():
            self.rollouts.labels(phase).set(n)
