"""Every status field the operator writes is named by RolloutStatus and by the CRD's status schema
(which keeps unknown fields, so a misspelt or undocumented one would pass the apiserver unseen)."""
from pathlib import Path

import yaml

from modelrollout.planner import plan
from modelrollout.status import COUNTS, RolloutStatus, parse_status
from modelrollout.webhooks import HookAnswers
from tests.packaging.phases import PHASES

from .test_planner import SERVING, T0, at
from .test_planner_shadow import mirroring
from .test_planner_webhooks import YES, hooked

CRD = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds/modelrollout.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]


def test_every_field_written_in_every_phase_is_typed_and_in_the_crd():
    hooks = hooked("pre-rollout", "rollback")
    gated = plan(hooks, {}, SERVING, None, T0).status
    asked = plan(hooks, gated, SERVING, None, at(30), applied=True, hooks=HookAnswers(YES, None, True)).status
    written = {key for obj in PHASES.values() for key in obj["status"]} | set(asked) | set(mirroring())
    assert written - set(RolloutStatus.__annotations__) == set()
    assert written - set(SCHEMA) == set()


def test_every_typed_field_is_in_the_crd():
    assert set(RolloutStatus.__annotations__) - set(SCHEMA) == set()


def test_counters_are_read_as_integers_and_other_fields_as_they_are():
    s = parse_status({"canaryWeight": None, "looks": 3, "phase": "Holding", "future": {"x": 1}})
    assert s == {"canaryWeight": 0, "looks": 3, "phase": "Holding", "future": {"x": 1}}
    assert set(COUNTS) <= set(RolloutStatus.__annotations__) and parse_status(None) == {}
