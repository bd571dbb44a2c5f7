"""Shadow comparison: what the mirror (mirror.py) sends a candidate, and how its answers are
paired with this version's. Pure: config text, arrays and bodies in; bodies and counts out.

The mirror's config is a small YAML (or JSON) file, a ConfigMap key the shipped ServingRuntimes
mount (optional, absent by default), read again whenever it changes:

    url: http://latest-cancer-predictor.models.svc     # the candidate's V2 REST root
    host: latest-cancer-predictor.models.example.com   # optional Host header (a gateway's route)
    model: cancer                                       # optional: the candidate's model name (default ours)
    fraction: 0.1                                       # of the requests this version answers
    sourceVersion: v1                                   # optional: only this version mirrors
    timeout: 2.0                                        # seconds per mirrored request

Each compared output counts its pairs (a class output: one per row position, the argmax; any
other output: one per element), the pairs that disagree (a different class, or a different bin
of the output's declared value bounds), and for value outputs the sum and sum of squares of the
paired differences (candidate minus this version), from which a paired test needs no labels.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Mapping, Sequence

import numpy as np
import orjson
import yaml

from .config import V2_DTYPES, TensorSpec

KEYS = ("url", "host", "model", "fraction", "sourceVersion", "timeout")


class ShadowError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class MirrorConfig:
    url: str
    fraction: float
    host: str | None = None
    model: str | None = None
    source_version: str | None = None
    timeout: float = 2.0

    def infer_url(self, own_model: str) -> str:
        return f"{self.url.rstrip('/')}/v2/models/{self.model or own_model}/infer"

    def infer_path(self, own_model: str) -> str:
        """The path of infer_url, after the URL's own path (a gateway's prefix)."""
        return urllib.parse.urlsplit(self.infer_url(own_model)).path

    def mirrors(self, version: str) -> bool:
        return self.fraction > 0 and self.source_version in (None, version)


def parse_mirror(text: str, where: str) -> MirrorConfig | None:
    """None for an empty file (the mirror off); ShadowError naming the field otherwise."""
    try:
        raw = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ShadowError(f"{where}: not YAML: {exc}") from None
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ShadowError(f"{where}: expected a mapping with {', '.join(KEYS)}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ShadowError(f"{where}: unknown field(s) {unknown}; known: {list(KEYS)}")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ShadowError(f"{where}.url: expected an http:// or https:// URL, got {url!r}")
    fraction, timeout = raw.get("fraction"), raw.get("timeout", 2.0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ShadowError(f"{where}.fraction: expected a number from 0 to 1, got {fraction!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise ShadowError(f"{where}.timeout: expected seconds above 0, at most 60, got {timeout!r}")
    for key in ("host", "model", "sourceVersion"):
        if raw.get(key) is not None and (not isinstance(raw[key], str) or not raw[key]):
            raise ShadowError(f"{where}.{key}: expected a non-empty string, got {raw[key]!r}")
    return MirrorConfig(url, float(fraction), raw.get("host"), raw.get("model"), raw.get("sourceVersion"), float(timeout))


def request_body(arrays: Sequence[np.ndarray], inputs: Sequence[TensorSpec]) -> bytes:
    """The decoded inputs as a V2 JSON request (float32 values survive JSON exactly)."""
    return orjson.dumps(
        {
            "inputs": [
                {"name": spec.name, "datatype": spec.datatype, "shape": list(array.shape), "data": array.ravel().tolist()}
                for spec, array in zip(inputs, arrays)
            ]
        }
    )


def answer_arrays(body: bytes, outputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """The named outputs of a V2 JSON answer, or ShadowError saying what is wrong with it."""
    try:
        raw = orjson.loads(body)
        given = {o["name"]: o for o in raw["outputs"]}
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ShadowError(f"the candidate's answer is not a V2 JSON response ({exc})") from None
    out = {}
    for spec in outputs:
        if spec.name not in given:
            raise ShadowError(f"the candidate's answer has no output '{spec.name}'")
        o = given[spec.name]
        try:
            out[spec.name] = np.asarray(o["data"], dtype=V2_DTYPES[spec.datatype]).reshape(o["shape"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ShadowError(f"the candidate's output '{spec.name}' is not {spec.datatype} of its shape ({exc})") from None
    return out


@dataclasses.dataclass(frozen=True)
class Paired:
    """One output's comparison of one mirrored request."""

    output: str
    pairs: int
    disagreements: int | None  # None: not a class and no declared bins
    difference_sum: float | None  # value outputs: candidate minus this version
    difference_squares: float | None


def compare(own: Mapping[str, np.ndarray], theirs: Mapping[str, np.ndarray], outputs: Sequence[TensorSpec]) -> list[Paired]:
    """Each output paired position by position; ShadowError when the shapes differ."""
    out = []
    for spec in outputs:
        a, b = np.asarray(own[spec.name]), np.asarray(theirs[spec.name])
        if a.shape != b.shape:
            raise ShadowError(f"output '{spec.name}': the candidate answered shape {list(b.shape)}, this version {list(a.shape)}")
        differs = None
        if spec.predictions:  # the bins its predictions are counted in (the drift gate's)
            mine = spec.predictions.bin_index(a)
            differs = int(np.count_nonzero(mine != spec.predictions.bin_index(b)))
            if spec.predictions.kind == "class":
                out.append(Paired(spec.name, int(mine.size), differs, None, None))
                continue
        x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        d = y - x
        finite = d[np.isfinite(d)]
        out.append(Paired(spec.name, int(x.size), differs, float(finite.sum()), float((finite * finite).sum())))
    return out
