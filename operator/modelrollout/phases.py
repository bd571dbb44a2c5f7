"""A rollout's phases (status.phase), and the groups the planner, the schedule, the conditions
and the plugin ask about. A StrEnum: each member is the string the status holds.

Before any traffic a candidate may run at 0% for the evaluation step (Evaluating: a labelled
holdout, evaluation.py) and then the shadow step (Shadowing: stable mirrors live requests to it,
shadow.py); then Progressing through the steps, Holding on an Inconclusive, Paused, and it ends
Promoted or RolledBack. Failed and Waiting are set by reconcile's preflight (the spec or the
InferenceService cannot be acted on, or KServe's status has not caught up), and resumePhase
keeps where the rollout carries on from.
"""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    IDLE = "Idle"
    EVALUATING = "Evaluating"
    SHADOWING = "Shadowing"
    PROGRESSING = "Progressing"
    HOLDING = "Holding"
    PAUSED = "Paused"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    WAITING = "Waiting"


BEFORE_TRAFFIC = (Phase.EVALUATING, Phase.SHADOWING)  # the candidate runs at 0% with an address
STEPPING = (Phase.PROGRESSING, Phase.HOLDING)  # a traffic step is running
ROLLING = (*BEFORE_TRAFFIC, *STEPPING, Phase.PAUSED)  # a candidate is in the rollout
HELD = (Phase.FAILED, Phase.WAITING)  # set before planning, by reconcile's preflight
