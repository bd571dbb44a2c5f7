"""How many threads a forward pass gets when TORCH_THREADS is not set."""
import pytest

from predictor.runtime import cpu_limit, default_threads


@pytest.mark.parametrize("files, limit", [
    ({"cpu.max": "200000 100000\n"}, 2.0),                        # cgroup v2, a 2-core limit
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),                          # v2, no limit
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),   # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),                                                   # no cgroup files at all
])
def test_cpu_limit_reads_cgroup_v2_and_v1(tmp_path, files, limit):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_limit(tmp_path) == limit


@pytest.mark.parametrize("limit, cores, threads", [
    (2.0, 64, 2),          # a 2-core pod on a 64-core node: 2 threads, not 64
    (1.5, 64, 2),          # rounded up
    (0.5, 64, 1),
    (8.0, 4, 4),           # never more than the cores it may run on
    (None, 6, 6),          # no limit: every usable core
])
def test_default_threads_follow_the_limit(limit, cores, threads):
    assert default_threads(limit, cores) == threads
