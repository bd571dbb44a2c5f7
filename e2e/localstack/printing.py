"""Server-side printing, as `kubectl get` asks for it (Accept: ...;as=Table): a meta.k8s.io/v1
Table with a Name column and jsonPath columns; date columns print as an age."""
from __future__ import annotations

import datetime as dt
from typing import Any

EVENT_COLUMNS = [{"name": "Last Seen", "type": "date", "jsonPath": ".lastTimestamp"},
                 {"name": "Type", "type": "string", "jsonPath": ".type"},
                 {"name": "Reason", "type": "string", "jsonPath": ".reason"},
                 {"name": "Object", "type": "string", "jsonPath": ".involvedObject.name"},
                 {"name": "Message", "type": "string", "jsonPath": ".message"}]


def _cell(obj: Any, path: str) -> Any:
    for key in path.strip(".").split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    seconds = int((dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def table(objects: list[dict], columns: list[dict], resource_version: str) -> dict:
    defs = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    defs += [{"name": c["name"], "type": c["type"], "format": "", "description": c["name"], "priority": 0} for c in columns]
    rows = [{"cells": [o["metadata"]["name"]] + [_age(_cell(o, c["jsonPath"])) if c["type"] == "date" else _cell(o, c["jsonPath"])
                                                  for c in columns],
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}}
            for o in objects]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": defs, "rows": rows}
