"""The plugin's edits: each a JSON merge patch of the ModelRollout's spec, the same edits Argo CD's
actions make (charts/modelrollout/files/argocd/actions/), offered in the same phases. Pure."""

from __future__ import annotations

from typing import Callable

from ..phases import ROLLING


class NotNow(Exception):
    """The action does not apply to the rollout as it stands (the message says why)."""


def _phase(rollout: dict) -> str:
    return (rollout.get("status") or {}).get("phase") or "Idle"


def _rolling(rollout: dict, action: str) -> None:
    if _phase(rollout) not in ROLLING:
        raise NotNow(f"nothing to {action}: the rollout is {_phase(rollout)}, not rolling out a candidate")


def promote(rollout: dict) -> dict:
    """Promote the candidate now (spec.promote)."""
    _rolling(rollout, "promote")
    return {"spec": {"promote": rollout["spec"]["model"]["version"]}}


def abort(rollout: dict) -> dict:
    """Roll back now and stay rolled back (spec.abort)."""
    _rolling(rollout, "abort")
    return {"spec": {"abort": True}}


def retry(rollout: dict) -> dict:
    """Start again after a rollback (spec.retry + 1, abort cleared)."""
    status = rollout.get("status") or {}
    if _phase(rollout) != "RolledBack" and not (_phase(rollout) == "Paused" and status.get("pausedBy") == "policy"):
        raise NotNow(
            f"nothing to retry: the rollout is {_phase(rollout)}; retry starts again after a rollback (or a pause by the onInconclusive policy)"
        )
    return {"spec": {"retry": int(rollout["spec"].get("retry") or 0) + 1, "abort": False}}


def pause(rollout: dict) -> dict:
    """Hold at the current step (spec.paused)."""
    _rolling(rollout, "pause")
    if rollout["spec"].get("paused"):
        raise NotNow("already paused by spec.paused")
    return {"spec": {"paused": True}}


def resume(rollout: dict) -> dict:
    """Carry on after a pause by spec.paused."""
    if not rollout["spec"].get("paused"):
        raise NotNow(
            "not paused by spec.paused"
            + (" (paused by the onInconclusive policy: use retry)" if (rollout.get("status") or {}).get("pausedBy") == "policy" else "")
        )
    return {"spec": {"paused": False}}


ACTIONS: dict[str, Callable[[dict], dict]] = {"promote": promote, "abort": abort, "retry": retry, "pause": pause, "resume": resume}
