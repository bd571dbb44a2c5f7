"""OpenAPI v3 documents for the emulated API server, one per group/version. Each says that every
write accepts the fieldValidation parameter, so kubectl leaves validation to the server (which
validates ModelRollouts against the CRD) instead of asking for the full OpenAPI v2 document.
ModelRollout gets its CRD schema; other kinds a permissive one."""
from __future__ import annotations

Resource = tuple[str, str, str, str, bool]    # group, version, plural, kind, namespaced


def openapi_documents(resources: list[Resource], crd: dict) -> tuple[dict, dict[str, dict]]:
    """(the /openapi/v3 index, {document URL: document})."""
    by_gv: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
    for group, version, plural, kind, namespaced in resources:
        by_gv.setdefault((group, version), []).append((plural, kind, namespaced))
    crd_kind, crd_schema = crd["spec"]["names"]["kind"], crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    index, documents = {}, {}
    for (g, v), kinds in by_gv.items():
        root = f"/apis/{g}/{v}" if g else f"/api/{v}"
        url = f"/openapi/v3{root}"
        index[root.lstrip("/")] = {"serverRelativeURL": url}
        paths, schemas = {}, {}
        for plural, kind, namespaced in kinds:
            gvk = {"group": g, "version": v, "kind": kind}
            op = {"x-kubernetes-group-version-kind": gvk, "responses": {"200": {"description": "OK"}},
                  "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}]}
            base = f"{root}/namespaces/{{namespace}}/{plural}" if namespaced else f"{root}/{plural}"
            paths[base] = {"post": op}
            paths[f"{base}/{{name}}"] = {"patch": op, "put": op}
            schema = crd_schema if kind == crd_kind else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            name = ".".join(reversed(g.split("."))) + f".{v}.{kind}" if g else f"io.k8s.api.core.{v}.{kind}"
            schemas[name] = {**schema, "x-kubernetes-group-version-kind": [gvk]}
        documents[url] = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.31.0"},
                          "paths": paths, "components": {"schemas": schemas}}
    return {"paths": index}, documents
