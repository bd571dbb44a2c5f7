"""Validates custom resources against a CRD offline, as the API server would: defaults from the
openAPIV3Schema, then the structural schema (jsonschema), then the x-kubernetes-validations
CEL rules (cel-python, with the Kubernetes list function isSorted added).

Used by the CRD tests, the packaging tests and the emulated API server of the local stack.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy import celtypes

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "modelrollout.yaml"


class Invalid(ValueError):
    """The object breaks the schema; .errors lists each problem as 'field: message'."""

    def __init__(self, kind: str, name: str, errors: list[str]):
        self.errors = errors
        super().__init__(f"{kind} {name!r} is invalid: " + "; ".join(errors))


def _is_sorted(values: celtypes.ListType) -> celtypes.BoolType:
    items = list(values)
    return celtypes.BoolType(items == sorted(items))


_CEL_FUNCTIONS = {"isSorted": _is_sorted}   # from Kubernetes' CEL list library


def _apply_defaults(schema: dict, value: Any) -> Any:
    if schema.get("type") == "object" and isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = _apply_defaults(sub, value[key])
    elif schema.get("type") == "array" and isinstance(value, list) and "items" in schema:
        value[:] = [_apply_defaults(schema["items"], item) for item in value]
    return value


def _openapi_to_jsonschema(schema: Any) -> Any:
    """OpenAPI v3 'nullable' -> JSON Schema null types; x-* extensions are ignored by jsonschema."""
    if isinstance(schema, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in schema.items() if k != "nullable"}
        if schema.get("nullable") and "type" in schema:
            out["type"] = [schema["type"], "null"]
        return out
    if isinstance(schema, list):
        return [_openapi_to_jsonschema(v) for v in schema]
    return schema


class CrdValidator:
    def __init__(self, crd: dict, version: str | None = None):
        self.crd = crd
        self.kind = crd["spec"]["names"]["kind"]
        versions = crd["spec"]["versions"]
        chosen = next(v for v in versions if version in (None, v["name"]))
        self.schema = chosen["schema"]["openAPIV3Schema"]
        self._json = jsonschema.Draft202012Validator(_openapi_to_jsonschema(self.schema))
        self._env = celpy.Environment()
        self._programs: dict[str, Any] = {}

    @classmethod
    def from_file(cls, path: Path = CRD_PATH) -> "CrdValidator":
        return cls(yaml.safe_load(Path(path).read_text()))

    def validate(self, obj: dict) -> dict:
        """Returns the object with defaults applied, or raises Invalid naming every bad field."""
        obj = _apply_defaults(self.schema, copy.deepcopy(obj))
        errors = [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                  for e in sorted(self._json.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]
        if not errors:
            self._rules(self.schema, obj, "", errors)
        if errors:
            raise Invalid(self.kind, (obj.get("metadata") or {}).get("name", ""), errors)
        return obj

    def _program(self, rule: str) -> Any:
        if rule not in self._programs:
            self._programs[rule] = self._env.program(self._env.compile(rule), functions=_CEL_FUNCTIONS)
        return self._programs[rule]

    def _rules(self, schema: dict, value: Any, path: str, errors: list[str]) -> None:
        if value is None:
            return
        for rule in schema.get("x-kubernetes-validations") or []:
            try:
                ok = self._program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
            except celpy.CELEvalError as exc:
                ok = False
                rule = {**rule, "message": rule.get("message") or str(exc)}
            if isinstance(ok, celpy.CELEvalError) or not ok:
                where = path + rule.get("fieldPath", "")
                errors.append(f"{where.lstrip('.') or '<root>'}: {rule.get('message') or 'failed rule: ' + rule['rule']}")
        if isinstance(value, dict):
            for key, sub in (schema.get("properties") or {}).items():
                if key in value:
                    self._rules(sub, value[key], f"{path}.{key}", errors)
        elif isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                self._rules(schema["items"], item, f"{path}[{i}]", errors)
