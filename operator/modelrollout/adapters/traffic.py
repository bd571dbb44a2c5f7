"""How a rollout's traffic is written into a KServe InferenceService: one Router per mode
(serverless.py: `canaryTrafficPercent`; standard.py: `spec.canary[]`).

A Router turns the planned Traffic into a JSON merge patch of the InferenceService, and reads
back what it serves. Bookkeeping lives in the ModelRollout's status, never in the
InferenceService's annotations: KServe copies those into revision and pod templates, so each
write would start new pods. The routers are pure; kube.KubeApi applies their patches.
"""

from __future__ import annotations

from typing import Protocol

from ..builds import Build, Runtime
from ..planner import Traffic
from .autoscaling import Scale
from .serverless import ServerlessRouter
from .standard import StandardRouter


class Router(Protocol):
    def serving(self, isvc: dict) -> tuple[str, str]:
        """(version, storageUri) the InferenceService's template holds: stable, at a first look."""

    def canary_weight(self, isvc: dict) -> int:
        """The canary's current traffic share."""

    def observe(self, isvc: dict) -> list[tuple[str, str]]:
        """(kind, name) of the platform objects the other methods need: "revision" or "httproute"."""

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale, observed: dict) -> dict:
        """The merge patch that makes the InferenceService `isvc` route `traffic`. observed: the
        objects observe() named, by (kind, name) (None if absent)."""

    def pending(self, isvc: dict, traffic: Traffic, observed: dict) -> str | None:
        """None once KServe serves the canary's weight from a ready canary running its model; else
        what is missing (waiting will tell)."""

    def stable_runtime(self, isvc: dict, observed: dict) -> Runtime | None:
        """The template's runtimeVersion and resources, with what the revision KServe rolled out runs
        where it runs the template's storageUri (serverless), for stable's record (builds.py); None
        while the template holds a canary."""

    def blocked(self, isvc: dict, stable: Build, observed: dict) -> str | None:
        """Why a canary written now would not split against stable (what it does not take would go
        to a revision not running `stable`), or None. Before a rollout it waits; during one,
        waiting cannot mend it."""

    def next_split(self, isvc: dict, observed: dict) -> list[tuple[Build, int]] | None:
        """[(what runs, percent)] the platform's next reconcile routes from the InferenceService as it
        is (serverless: KServe's bookkeeping of rolled-out revisions), None where unknown."""

    def revisions(self, isvc: dict, observed: dict) -> list[tuple[str, Build]]:
        """[(name, what it runs)] of the Knative revisions KServe names (standard: none), for
        providers that tell versions apart by revision."""

    def addresses(self, isvc: dict, traffic: Traffic, observed: dict) -> tuple[dict[str, str] | None, str]:
        """({"candidate": url, "stable": url}, "") once each version has a ready address of its own
        for the evaluation step (the candidate at 0%), else (None, what is missing)."""


ROUTERS: dict[str, Router] = {"serverless": ServerlessRouter(), "standard": StandardRouter()}
