"""Turning Prometheus's raw samples into per-stretch histograms (the answer's shape is the
HTTP API's range-vector result)."""
import math

from modelrollout.adapters.prometheus import time_slices


def series(le, *samples, pod="a"):
    return {"metric": {"le": le, "pod": pod}, "values": [[t, str(v)] for t, v in samples]}


def test_each_scrapes_increment_lands_in_its_stretch_summed_over_pods():
    answer = [series("0.01", (100, 5), (101, 9), (102, 9), (103, 10)),
              series("+Inf", (100, 6), (101, 10), (102, 30), (103, 31)),
              series("0.01", (100.5, 0), (102.5, 4), pod="b"),
              series("+Inf", (100.5, 0), (102.5, 4), pod="b")]
    # a 4 s window in 4 stretches ending at 103: (99,100], (100,101], (101,102], (102,103]
    assert time_slices(answer, window=4, count=4) == (
        ((0.01, 4.0), (math.inf, 4.0)),             # pod a's 100 -> 101
        ((0.01, 0.0), (math.inf, 20.0)),            # 101 -> 102: 20 requests slower than 10 ms
        ((0.01, 5.0), (math.inf, 5.0)),             # a: 102 -> 103, and b's one increment at 102.5
    )


def test_a_counter_reset_counts_the_new_value_and_no_sample_no_stretch():
    answer = [series("+Inf", (10, 50), (11, 3), (12, 7))]                 # the pod restarted before 11
    assert time_slices(answer, window=10, count=10) == (((math.inf, 3.0),), ((math.inf, 4.0),))
    assert time_slices([], window=10) == ()
    assert time_slices([series("+Inf", (10, 50))], window=10) == ()       # one sample: no increment
