"""The mirror's queue and config: bounded, never blocking, following its file."""
import asyncio
import os

import numpy as np
import orjson

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


def test_what_waits_in_the_queue_goes_as_one_request_and_is_paired_row_by_row(tmp_path):
    """Three queued requests of the same row shape arrive at the candidate as one request of their
    rows, in order; a fourth of another row shape goes on its own. Outcomes count per request."""
    async def scenario():
        bodies = []

        async def candidate(reader, writer):              # answers class 0 for every row, kept alive
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                body = orjson.loads(await reader.readexactly(length))
                bodies.append(body)
                rows = body["inputs"][0]["shape"][0]
                answer = orjson.dumps({"outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [rows, 2],
                                                    "data": [0.9, 0.1] * rows}]})
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer)
        server = await asyncio.start_server(candidate, "127.0.0.1", 0)
        path = tmp_path / "shadow.yaml"
        path.write_text(f"url: http://127.0.0.1:{server.sockets[0].getsockname()[1]}\nfraction: 1\n")
        seen = Seen()
        m = mirror(path, seen, workers=1)
        class_one = np.array([[0.1, 0.9]], np.float32)
        for i in range(3):                                 # row i: features [i, i]; stable said class 1 for row 1
            m.offer([np.full((1, 2), i, np.float32)], [class_one if i == 1 else np.array([[0.8, 0.2]], np.float32)])
        m.offer([np.zeros((1, 3), np.float32)], [np.array([[0.8, 0.2]], np.float32)])   # another row shape
        await asyncio.wait_for(m.idle(), 10)
        await m.close()
        server.close()
        return bodies, seen

    bodies, seen = asyncio.run(scenario())
    assert [b["inputs"][0]["shape"] for b in bodies] == [[3, 2], [1, 3]]    # all four queued before the worker ran
    assert np.asarray(bodies[0]["inputs"][0]["data"]).reshape(3, 2)[:, 0].tolist() == [0, 1, 2]
    assert seen.outcomes == [COMPARED] * 4
    assert sum(p.pairs for p in seen.pairs) == 4 and sum(p.disagreements for p in seen.pairs) == 1
