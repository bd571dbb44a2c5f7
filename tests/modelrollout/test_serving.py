"""After a serverless promotion or rollback, whether KServe routes stable alone (serving.py)."""
import datetime as dt

from modelrollout.builds import Build
from modelrollout.schedule import timestamp
from modelrollout.serving import SETTLE_SECONDS, verify_serving

from .test_planner import T0, spec

V1, V2 = Build("pvc://m/cancer/v1"), Build("pvc://m/cancer/v2")


def promoted(**extra):
    return {"phase": "Promoted", "stableVersion": "v2", "stableStorageUri": V2.storage_uri,
            "routedAt": timestamp(T0), **extra}


def later(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def test_stable_routed_alone_now_and_next_is_verified():
    assert verify_serving(spec(), promoted(), [(V2, 100)], [(V2, 100)], later(5)) == ({"servingVerified": True}, [])


def test_what_kserve_is_about_to_route_counts_as_much_as_what_it_routes():
    fields, events = verify_serving(spec(), promoted(), [(V2, 100)], [(V1, 100)], later(SETTLE_SECONDS + 1))
    assert fields["phase"] == "Failed" and fields["resumePhase"] == "Promoted"
    assert "is about to route 100% to pvc://m/cancer/v1" in fields["servingError"]
    assert [e.reason for e in events] == ["ServingMismatch"]


def test_kserve_gets_time_to_apply_the_last_patch_before_a_mismatch_is_reported():
    assert verify_serving(spec(), promoted(), [(V1, 100)], None, later(5)) == ({"servingVerified": None}, [])
    fields, _ = verify_serving(spec(), promoted(), [(V1, 100)], None, later(SETTLE_SECONDS))
    assert "routes 100% to pvc://m/cancer/v1" in fields["servingError"]


def test_a_mismatch_that_ends_is_reported_restored():
    fields, events = verify_serving(spec(), promoted(servingError="x"), [(V2, 100)], [(V2, 100)], later(90))
    assert fields == {"servingVerified": True, "servingError": None} and [e.reason for e in events] == ["ServingRestored"]


def test_nothing_is_checked_while_rolling_out_or_before_kserve_knows_every_revision():
    assert verify_serving(spec(), {**promoted(), "phase": "Progressing"}, [(V1, 100)], None, later(90)) == ({}, [])
    assert verify_serving(spec(), promoted(), None, None, later(90)) == ({}, [])
