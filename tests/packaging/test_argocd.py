"""The Argo CD health check and actions the chart ships (charts/modelrollout/files/argocd/), run by
a Lua 5.1 interpreter (lupa; Argo CD's gopher-lua is 5.1) on ModelRollout objects in every phase,
as the operator's own reconciler leaves them (the in-memory Kubernetes of the reconciler's tests)."""
import copy
from pathlib import Path

import lupa.lua51 as lua51
import pytest
import yaml

from modelrollout.spec import parse_spec

from .phases import PHASES, phase_of
from .rendered import REPO

ARGOCD = REPO / "charts/modelrollout/files/argocd"
PATCH = REPO / "manifests/argocd/argocd-cm-patch.yaml"


def run(script: Path, obj: dict):
    """The script's result with `obj` as Argo CD passes it (a global table)."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)

    def table(value):
        if isinstance(value, dict):
            return lua.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([table(v) for v in value])
        return value
    lua.globals().obj = table(obj)
    return python(lua.execute(script.read_text()))


def python(value):
    if lupa_table(value):
        keys = list(value.keys())
        if keys and all(isinstance(k, int) for k in keys):
            return [python(value[k]) for k in sorted(keys)]
        return {k: python(v) for k, v in value.items()}
    return value


def lupa_table(value) -> bool:
    return lua51.lua_type(value) == "table"


HEALTH = {"Progressing": "Progressing", "Paused": "Suspended", "RolledBack": "Degraded", "Promoted": "Progressing",
          "Promoted, routed alone": "Healthy", "Failed": "Degraded", "Idle": "Healthy", "Waiting": "Progressing",
          "Evaluating": "Progressing", "Shadowing": "Progressing", "Holding": "Progressing"}


@pytest.mark.parametrize("name", list(HEALTH))
def test_health_follows_the_phase(name):
    obj = PHASES[name]
    assert obj["status"]["phase"] == phase_of(name)
    hs = run(ARGOCD / "health.lua", obj)
    assert hs["status"] == HEALTH[name], hs
    assert isinstance(hs["message"], str) and hs["message"]


def test_a_promotion_is_healthy_once_kserve_routes_it_alone():
    assert "waiting for KServe" in run(ARGOCD / "health.lua", PHASES["Promoted"])["message"]
    assert run(ARGOCD / "health.lua", PHASES["Promoted, routed alone"]) == {"status": "Healthy", "message": "Promoted v2"}


def test_in_standard_mode_a_promotion_is_healthy_at_once():
    """The operator verifies serving only in serverless mode (no Knative revisions otherwise)."""
    obj = copy.deepcopy(PHASES["Promoted"])
    obj["spec"]["strategy"]["trafficMode"] = "standard"
    assert run(ARGOCD / "health.lua", obj) == {"status": "Healthy", "message": "Promoted v2"}


def test_a_spec_the_operator_has_not_read_is_progressing():
    obj = copy.deepcopy(PHASES["Idle"])
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
    assert run(ARGOCD / "health.lua", obj)["status"] == "Progressing"
    assert run(ARGOCD / "health.lua", {"metadata": {"name": "new"}, "spec": {}})["status"] == "Progressing"


@pytest.mark.parametrize("phase, enabled", [
    ("Progressing", {"promote", "abort", "pause"}), ("Shadowing", {"promote", "abort", "pause"}),
    ("Paused", {"promote", "abort", "resume"}),
    ("RolledBack", {"retry"}), ("Idle", set()), ("Failed", set()),
])
def test_actions_offered_in_each_phase(phase, enabled):
    actions = run(ARGOCD / "actions/discovery.lua", PHASES[phase])
    assert {name for name, a in actions.items() if not a.get("disabled")} == enabled


@pytest.mark.parametrize("action, phase, changed", [
    ("promote", "Progressing", {"promote": "v2"}), ("abort", "Progressing", {"abort": True}),
    ("pause", "Progressing", {"paused": True}), ("resume", "Paused", {"paused": False}),
    ("retry", "RolledBack", {"retry": 1, "abort": False}),
])
def test_actions_edit_the_spec_as_the_operator_reads_it(action, phase, changed):
    obj = PHASES[phase]
    edited = run(ARGOCD / f"actions/{action}/action.lua", obj)
    assert {k: v for k, v in edited["spec"].items() if obj["spec"].get(k) != v} == changed
    parse_spec(edited["spec"])                               # still a spec the operator acts on


def test_the_argocd_cm_patch_carries_exactly_the_shipped_scripts():
    cm = yaml.safe_load(PATCH.read_text())
    key = "serving.modelrollout.io_ModelRollout"
    assert cm["data"][f"resource.customizations.health.{key}"] == (ARGOCD / "health.lua").read_text()
    actions = yaml.safe_load(cm["data"][f"resource.customizations.actions.{key}"])
    assert actions["discovery.lua"] == (ARGOCD / "actions/discovery.lua").read_text()
    assert {d["name"]: d["action.lua"] for d in actions["definitions"]} == {
        p.parent.name: p.read_text() for p in ARGOCD.glob("actions/*/action.lua")}
