"""The plugin's edits are Argo CD's: the same spec change, offered in the same phases
(charts/modelrollout/files/argocd/actions/, run in Lua 5.1 on the same ModelRollouts)."""
import pytest

from modelrollout.plugin.actions import ACTIONS, NotNow
from modelrollout.adapters.isvc import merge_patch
from modelrollout.spec import parse_spec
from tests.packaging.phases import PHASES
from tests.packaging.test_argocd import ARGOCD, run


@pytest.mark.parametrize("name", list(PHASES))
def test_each_action_is_offered_where_argo_cd_offers_it_and_edits_the_spec_as_it_does(name):
    obj = PHASES[name]
    offered = {a for a, v in run(ARGOCD / "actions/discovery.lua", obj).items() if not v.get("disabled")}
    for action, edit in ACTIONS.items():
        if action not in offered:
            with pytest.raises(NotNow):
                edit(obj)
            continue
        edited = merge_patch(obj, edit(obj))["spec"]
        assert edited == run(ARGOCD / f"actions/{action}/action.lua", obj)["spec"], action
        parse_spec(edited)                                   # a spec the operator acts on


def test_a_refusal_says_why():
    with pytest.raises(NotNow, match="nothing to promote: the rollout is RolledBack"):
        ACTIONS["promote"](PHASES["RolledBack"])
    with pytest.raises(NotNow, match="not paused by spec.paused"):
        ACTIONS["resume"](PHASES["Progressing"])
