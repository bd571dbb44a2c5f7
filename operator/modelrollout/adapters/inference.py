"""The evaluation step's I/O: the holdout from its ConfigMap, and V2 REST inference against the
addresses KServe gives the candidate and stable revisions (its `latest` and `prev` traffic tags).

A gateway (spec.evaluation.gateway) is where requests go when KServe's URLs do not resolve where
the operator runs: an ingress that routes by Host, as `curl -H "Host: ..." $INGRESS` is told to.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Callable
from urllib.parse import urlsplit

import numpy as np

from ..analysis import Verdict
from ..evaluation import HoldoutError, batches, judge, parse_holdout, score, unscored
from ..spec import RolloutSpec
from .kube import NotFound


class InferenceError(Exception):
    """A version did not answer a V2 request with outputs; the message says what it answered."""


def infer(url: str, model: str, inputs: list[dict], timeout: float, gateway: str | None = None) -> dict[str, np.ndarray]:
    """POST {url}/v2/models/{model}/infer; the response's outputs by name, shaped."""
    target = urlsplit(url)
    via = urlsplit(gateway) if gateway else target
    connection = (http.client.HTTPSConnection if via.scheme == "https" else http.client.HTTPConnection)(via.hostname or "", via.port, timeout=timeout)
    path = f"{target.path.rstrip('/')}/v2/models/{model}/infer"
    try:
        connection.request("POST", path, json.dumps({"inputs": inputs}), {"Host": target.netloc, "Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        hint = " (a name that does not resolve here: set spec.evaluation.gateway)" if isinstance(exc, socket.gaierror) else ""
        raise InferenceError(f"{url}{path[len(target.path.rstrip('/')) :]}: {exc}{hint}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise InferenceError(f"{url}: {response.status} {body[:300].decode(errors='replace')}")
    try:
        outputs = json.loads(body)["outputs"]
        return {o["name"]: np.asarray(o["data"], dtype=np.float64).reshape(o["shape"]) for o in outputs}
    except (ValueError, KeyError, TypeError) as exc:
        raise InferenceError(f"{url}: not a V2 inference response ({exc!r})") from None


def answers(url: str, spec: RolloutSpec, holdout, send=infer) -> np.ndarray:
    """One version's answers to the whole holdout, on the output the spec names (else the first)."""
    e = spec.evaluation
    assert e is not None
    parts = []
    for chunk in batches(holdout, e.batch_size):
        outputs = send(url, spec.model_name, chunk, e.timeout, e.gateway)
        name = e.output or next(iter(outputs), None)
        if name not in outputs:
            raise InferenceError(f"{url}: no output {name!r} (it answered {', '.join(outputs) or 'none'})")
        parts.append(outputs[name])
    return np.concatenate(parts)


# (namespace, name) -> the ConfigMap's data
ReadConfigMap = Callable[[str, str], dict]


def evaluate(read_config_map: ReadConfigMap, spec: RolloutSpec, namespace: str, addresses: dict[str, str], send=infer) -> Verdict:
    """Scores candidate and stable on the holdout: addresses has their URLs by role. A holdout or
    a version that cannot be read is an Error verdict naming it, never an exception."""
    e = spec.evaluation
    assert e is not None
    where = f"ConfigMap {namespace}/{e.config_map} key {e.key}"
    try:
        text = (read_config_map(namespace, e.config_map) or {}).get(e.key)
        if text is None:
            return unscored(f"{where}: no such key")
        holdout = parse_holdout(text, where)
    except NotFound:
        return unscored(f"ConfigMap {namespace}/{e.config_map} not found")
    except HoldoutError as exc:
        return unscored(str(exc))
    scores = {}
    for role in ("candidate", "stable"):
        try:
            scores[role] = score(e.metric, answers(addresses[role], spec, holdout, send), holdout.labels)
        except (InferenceError, HoldoutError) as exc:
            return unscored(f"{role}: {exc}")
    return judge(e.metric, e.margin, scores["candidate"], scores["stable"], holdout.rows)
