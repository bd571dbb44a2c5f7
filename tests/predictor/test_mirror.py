"""The mirror's queue and config: bounded, never blocking, following its file."""
import asyncio
import os

import numpy as np

from predictor.config import TensorSpec
from predictor.mirror import COMPARED, DROPPED, FAILED, Mirror
from predictor.predictions import parse_predictions

INPUTS = (TensorSpec("features", "FP32", (-1, 2)),)
OUTPUTS = (TensorSpec("probabilities", "FP32", (-1, 2), parse_predictions({"kind": "class"}, "p", (2,))),)
ROW = [np.zeros((1, 2), np.float32)]


class Seen:
    def __init__(self):
        self.outcomes, self.pairs = [], []

    def shadow_outcome(self, outcome):
        self.outcomes.append(outcome)

    def shadow_pairs(self, pairs):
        self.pairs.extend(pairs)


def mirror(path, observer, **kw):
    return Mirror(path, "cancer", "v1", INPUTS, OUTPUTS, observer, **kw)


def test_no_file_or_an_empty_one_mirrors_nothing(tmp_path):
    seen = Seen()
    m = mirror(tmp_path / "absent.yaml", seen, reread=0)
    m.offer(ROW, ROW)
    (tmp_path / "empty.yaml").write_text("")
    mirror(tmp_path / "empty.yaml", seen, reread=0).offer(ROW, ROW)
    assert seen.outcomes == [] and m.config() is None


def test_the_config_is_read_again_when_the_file_changes(tmp_path):
    path = tmp_path / "shadow.yaml"
    path.write_text("url: http://127.0.0.1:9\nfraction: 0.5\n")
    m = mirror(path, Seen(), reread=0)
    assert m.config().fraction == 0.5
    path.write_text("url: http://127.0.0.1:9\nfraction: 0.25\nsourceVersion: v2\n")
    os.utime(path, ns=(1, 1))                      # a different mtime even on a coarse clock
    assert m.config().fraction == 0.25 and not m.config().mirrors("v1")
    path.write_text("fraction: [")                 # bad: off, never an exception on the serving path
    os.utime(path, ns=(2, 2))
    assert m.config() is None
    path.unlink()
    assert m.config() is None


def test_a_full_queue_drops_and_counts_without_waiting(tmp_path):
    """A candidate that accepts connections and never answers: one request per worker is in
    flight, the queue holds `queue_size`, every further offer is dropped at once."""
    async def scenario():
        hung = []

        async def never_answer(reader, writer):
            hung.append(writer)
            await reader.read()                   # until the mirror gives up and closes
        server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        path = tmp_path / "shadow.yaml"
        path.write_text(f"url: http://127.0.0.1:{port}\nfraction: 1\ntimeout: 0.5\n")
        seen = Seen()
        m = mirror(path, seen, queue_size=3, workers=1)
        for _ in range(10):                        # offer() is plain code: no worker runs in between
            m.offer(ROW, ROW)
        dropped = seen.outcomes.count(DROPPED)
        await asyncio.wait_for(m.idle(), 15)
        await m.close()
        server.close()
        await server.wait_closed()
        return dropped, seen.outcomes

    dropped, outcomes = asyncio.run(scenario())
    assert dropped == 7                            # 10 offered, 3 queued
    assert outcomes.count(FAILED) == 10 - dropped and COMPARED not in outcomes   # the timeouts


def test_only_the_drawn_fraction_is_sent(tmp_path):
    path = tmp_path / "shadow.yaml"
    path.write_text("url: http://127.0.0.1:9\nfraction: 0.3\n")
    draws = iter([0.1, 0.5, 0.29, 0.3, 0.9])

    async def scenario():
        seen = Seen()
        m = mirror(path, seen, draw=lambda: next(draws))
        for _ in range(5):
            m.offer(ROW, ROW)
        await asyncio.wait_for(m.idle(), 10)
        await m.close()
        return seen.outcomes

    assert asyncio.run(scenario()) == [FAILED, FAILED]     # 0.1 and 0.29; port 9 refuses
