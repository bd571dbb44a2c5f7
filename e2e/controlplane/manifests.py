"""Reading the platform's own YAML (copied by build.sh from the pinned Go modules) and the few
edits a loopback install needs, each a plain function of the documents."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Iterable, Iterator

import yaml


def documents(*paths: Path) -> Iterator[dict]:
    """Every YAML document in the given files (directories: their *.yaml, recursively, sorted)."""
    for path in paths:
        files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
        for f in files:
            for doc in yaml.safe_load_all(f.read_text()):
                if isinstance(doc, dict) and doc.get("kind"):
                    yield doc


def of_kind(docs: Iterable[dict], *kinds: str) -> list[dict]:
    return [d for d in docs if d["kind"] in kinds]


def dump(docs: Iterable[dict]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


def with_data(configmap: dict, **data: str) -> dict:
    """The ConfigMap with these keys set (its documentation-only `_example` key kept)."""
    return {**configmap, "data": {**(configmap.get("data") or {}), **data}}


def webhooks_by_url(configuration: dict, base_url: str, ca_pem: bytes) -> dict:
    """A webhook configuration whose service references become URLs on base_url (the webhook
    server runs as a local process, not behind a Service), trusting ca_pem."""
    hooks = []
    for hook in configuration.get("webhooks", []):
        path = (hook["clientConfig"].get("service") or {}).get("path", "")
        hooks.append({**hook, "clientConfig": {"url": base_url + path,
                                               "caBundle": base64.b64encode(ca_pem).decode()}})
    meta = {k: v for k, v in configuration["metadata"].items() if k != "creationTimestamp"}
    return {**configuration, "metadata": meta, "webhooks": hooks}
