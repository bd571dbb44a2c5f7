"""The guardrail: when it looks, what it spends, and what it calls a gross failure."""
import dataclasses
import datetime as dt

import pytest

from modelrollout.analysis import FAIL, Measurements, Scrape, VersionSample
from modelrollout.guardrail import guard, guard_alpha, guard_due
from modelrollout.schedule import analysis_budget, requeue_after
from modelrollout.spec import parse_spec

T0 = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)


def spec(guardrail=None, **analysis):
    a = {"prometheus": {"url": "http://p"}, "scrapeInterval": "15s", **analysis}
    if guardrail is not None:
        a["guardrail"] = guardrail
    return parse_spec({"inferenceService": "cancer", "model": {"version": "v2", "storageUri": "pvc://v2"},
                       "strategy": {"steps": [{"weight": 10, "hold": "10m"}, {"weight": 100}]}, "analysis": a})


STATUS = {"phase": "Progressing", "canaryVersion": "v2", "canaryStorageUri": "pvc://v2", "stableVersion": "v1",
          "stableStorageUri": "pvc://v1", "currentStep": 0, "canaryWeight": 10, "stepStartedAt": "2026-12-03T12:00:00Z",
          "stepRequestedAt": "2026-12-03T11:59:50Z"}


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_the_guard_looks_during_a_served_hold_once_per_scrape_interval_and_only_when_asked_for():
    on = spec({"maxErrorRate": 0.2})
    assert not guard_due(spec(), STATUS, at(120))                             # off unless set
    assert not guard_due(on, STATUS, at(20))                                  # no whole increment yet
    assert guard_due(on, STATUS, at(31))
    assert not guard_due(on, {**STATUS, "guardedAt": "2026-12-03T12:00:30Z"}, at(40))
    assert guard_due(on, {**STATUS, "guardedAt": "2026-12-03T12:00:30Z"}, at(46))
    assert not guard_due(on, {**STATUS, "stepStartedAt": None}, at(120))     # the step is not served yet
    assert not guard_due(on, {**STATUS, "phase": "Paused"}, at(120))
    assert requeue_after(on, STATUS, at(60)) == 15.0 and requeue_after(spec(), STATUS, at(60)) > 15


def test_the_guard_spends_its_share_and_the_analysis_the_rest():
    on = spec({"maxErrorRate": 0.2, "share": 0.1}, significance=0.05)
    assert analysis_budget(on) == pytest.approx(0.045) and analysis_budget(spec(significance=0.05)) == 0.05
    spent = sum(guard_alpha(on, {"guardLooks": k}) for k in range(100000))
    assert 0.00499 < spent < 0.005                                            # never more than its share


def window(requests: int, errors: int, scrapes: int = 4) -> VersionSample:
    parts = tuple(Scrape(requests / scrapes, errors / scrapes) for _ in range(scrapes))
    return VersionSample(requests, errors, (), scrapes=parts)


def test_a_canary_failing_most_requests_trips_it_and_a_merely_worse_one_does_not():
    on = spec({"maxErrorRate": 0.2})
    tripped = guard(on, Measurements(window(200, 120), None), guard_alpha(on, {}))
    assert tripped.outcome == FAIL and tripped.details["guardrail"] and "above 0.2" in tripped.reason
    assert guard(on, Measurements(window(200, 30), None), guard_alpha(on, {})) is None     # 15%: the analysis's to judge
    assert guard(on, Measurements(window(20, 8), None), guard_alpha(on, {})) is None       # too few to be sure
    assert guard(on, Measurements(None, None, error="down"), 0.01) is None


def test_errors_that_come_together_count_for_less():
    """The same 60 errors in 400 requests, all in one scrape: spread, so the guard needs more."""
    on = spec({"maxErrorRate": 0.1})
    even = window(400, 60)
    burst = dataclasses.replace(even, scrapes=(Scrape(100, 60), Scrape(100, 0), Scrape(100, 0), Scrape(100, 0)))
    assert guard(on, Measurements(even, None), guard_alpha(on, {})) is not None
    assert guard(on, Measurements(burst, None), guard_alpha(on, {})) is None


def test_a_tripped_guard_rolls_back_at_once_and_every_look_is_counted():
    from modelrollout.planner import plan
    on = spec({"maxErrorRate": 0.2})
    tripped = guard(on, Measurements(window(200, 120), None), guard_alpha(on, {}))
    p = plan(on, STATUS, ("v1", "pvc://v1"), tripped, at(60), applied=True, guarded=True)
    assert p.status["phase"] == "RolledBack" and p.traffic.canary_weight == 0
    assert [e.reason for e in p.events] == ["GuardrailFailed", "RolledBack"]
    assert p.status["lastAnalysis"]["verdict"] == "Fail" and p.status["guardLooks"] == 1
    calm = plan(on, STATUS, ("v1", "pvc://v1"), None, at(60), applied=True, guarded=True)
    assert calm.status["phase"] == "Progressing" and calm.status["guardLooks"] == 1
    assert calm.status["guardedAt"] == "2026-12-03T12:01:00Z" and not calm.events
