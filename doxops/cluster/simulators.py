"""Stand-ins for the controllers the e2e cluster does not run: an ingress controller and External Secrets.

The e2e cluster runs the real API server, controller manager, scheduler and
metrics-server; kubelets are simulated by kwok. Two more controllers act on what the
charts render and are not run, because they would need images or the network:

``IngressSimulator``
    Plays an ingress controller of one IngressClass (``nginx``, what prod asks for):
    it creates that IngressClass (controller ``k8s.io/ingress-nginx``) and, for every
    Ingress of the class, writes ``status.loadBalancer.ingress`` with the address
    ``127.0.0.1``, as a controller publishing its address would. It proxies nothing.

``ExternalSecretsSimulator``
    Plays the External Secrets Operator for the ``external-secrets.io/v1`` objects. The
    test store is a ``ClusterSecretStore`` of the operator's ``fake`` provider, created
    by :meth:`ExternalSecretsSimulator.create_store` from a fixed definition,
    :func:`store_definition`: the secrets the environment's values say the store holds
    (``global.secrets.*.remoteRef`` and ``global.externalSecrets.secretStoreRef``), with
    freshly generated random values (``secrets.token_urlsafe``). It is never derived from
    the ExternalSecrets it serves, so an ExternalSecret asking for a remote key or property
    the store does not hold fails, as it would against the real store. For each
    ExternalSecret it reads that store, creates the
    target Secret (owned by the ExternalSecret when ``creationPolicy: Owner``) and sets
    the ``Ready`` condition (``SecretSynced``), or ``Ready=False`` with the reason when
    the store or a key is missing. Values are never logged or printed.

Both run as one background loop (:class:`Simulators`), like controllers: start it after
the API server is up; it reconciles every ``interval`` seconds until stopped.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .api import MERGE, Api, ApiError

INGRESS_CLASS = "nginx"
INGRESS_CONTROLLER = "k8s.io/ingress-nginx"
INGRESS_ADDRESS = "127.0.0.1"
ES_GROUP = "/apis/external-secrets.io/v1"


@dataclass
class StoreDefinition:
    """A secret store: its kind and name, and ``{remote key: value}`` (a JSON object when it has properties)."""

    kind: str
    name: str
    data: dict[str, str] = field(default_factory=dict)

    def keys(self) -> list[str]:
        """``key`` or ``key.property`` for everything the store holds (no values)."""
        out = []
        for key, value in sorted(self.data.items()):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            out += [f"{key}.{p}" for p in sorted(parsed)] if isinstance(parsed, dict) else [key]
        return out


def store_definition(values: dict, whole_key_properties: dict[str, list[str]]) -> StoreDefinition:
    """The store the environment's values say exists, with generated values.

    For each ``global.secrets.<name>``: its ``remoteRef.key`` holds ``remoteRef.property`` when one is
    named; the whole value when the Secret has one ``key``; otherwise (every property becomes a key of
    the Secret) the properties ``whole_key_properties[<name>]``, the Secret's keys as the repository
    defines them (:data:`doxops.operate.MINIKUBE_SECRETS`).
    """
    global_values = values.get("global") or {}
    ref = (global_values.get("externalSecrets") or {}).get("secretStoreRef") or {}
    properties: dict[str, dict[str, str]] = {}
    whole: dict[str, str] = {}
    for name, settings in sorted((global_values.get("secrets") or {}).items()):
        remote = (settings or {}).get("remoteRef") or {}
        if not remote.get("key"):
            raise ValueError(f"global.secrets.{name}.remoteRef.key is not set: the store's definition needs it")
        if remote.get("property"):
            properties.setdefault(remote["key"], {})[remote["property"]] = secrets.token_urlsafe(24)
        elif settings.get("key"):
            whole[remote["key"]] = secrets.token_urlsafe(24)
        else:
            if not whole_key_properties.get(name):
                raise ValueError(f"global.secrets.{name}: no properties are defined for its whole remote key")
            properties.setdefault(remote["key"], {}).update(
                {p: secrets.token_urlsafe(24) for p in whole_key_properties[name]})
    data = {**whole, **{k: json.dumps(v, sort_keys=True) for k, v in properties.items()}}
    return StoreDefinition(ref.get("kind", "SecretStore"), ref.get("name", ""), data)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class IngressSimulator:
    """Publishes 127.0.0.1 as the load-balancer address of every Ingress of class ``nginx``."""

    def __init__(self, api: Api, ingress_class: str = INGRESS_CLASS, address: str = INGRESS_ADDRESS) -> None:
        self.api, self.ingress_class, self.address = api, ingress_class, address
        self._class_created = False

    def reconcile(self) -> None:
        if not self._class_created:
            try:
                self.api.create("/apis/networking.k8s.io/v1/ingressclasses", {
                    "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                    "metadata": {"name": self.ingress_class,
                                 "annotations": {"e2e.dox-asdlc.io/simulated": "doxops.cluster.simulators"}},
                    "spec": {"controller": INGRESS_CONTROLLER},
                })
            except ApiError as exc:
                if exc.status != 409:
                    raise
            self._class_created = True
        for ingress in self.api.items("/apis/networking.k8s.io/v1/ingresses"):
            if (ingress.get("spec") or {}).get("ingressClassName") != self.ingress_class:
                continue
            wanted = [{"ip": self.address}]
            if ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") == wanted:
                continue
            meta = ingress["metadata"]
            self.api.patch(f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/ingresses/{meta['name']}/status",
                           {"status": {"loadBalancer": {"ingress": wanted}}})


class ExternalSecretsSimulator:
    """Syncs ExternalSecrets from a fake-provider ClusterSecretStore into Secrets."""

    def __init__(self, api: Api) -> None:
        self.api = api

    # ------------------------------------------------------------------ the test store

    def create_store(self, definition: "StoreDefinition") -> str:
        """Create the store of ``definition`` (a fake-provider ClusterSecretStore); returns its name."""
        if definition.kind != "ClusterSecretStore":
            raise ValueError(f"the simulator provides ClusterSecretStores only, not {definition.kind} "
                             f"{definition.name}")
        self.api.create(f"{ES_GROUP}/clustersecretstores", {
            "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
            "metadata": {"name": definition.name,
                         "annotations": {"e2e.dox-asdlc.io/simulated": "test store with generated values"}},
            "spec": {"provider": {"fake": {"data": [{"key": k, "value": v}
                                                    for k, v in sorted(definition.data.items())]}}},
        })
        return definition.name

    # ------------------------------------------------------------------ the sync

    def _store_data(self, ref: dict) -> dict[str, str] | None:
        if ref.get("kind", "SecretStore") != "ClusterSecretStore":
            return None
        store = self.api.get_or_none(f"{ES_GROUP}/clustersecretstores/{ref.get('name', '')}")
        if store is None:
            return None
        return {d["key"]: d.get("value", "") for d in ((store.get("spec") or {}).get("provider") or {})
                .get("fake", {}).get("data") or []}

    @staticmethod
    def _resolve(spec: dict, data: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in spec.get("data") or []:
            remote = item["remoteRef"]
            raw = data[remote["key"]]
            prop = remote.get("property")
            out[item["secretKey"]] = str(json.loads(raw)[prop]) if prop else raw
        for item in spec.get("dataFrom") or []:
            key = (item.get("extract") or {}).get("key")
            if key:
                out.update({k: str(v) for k, v in json.loads(data[key]).items()})
        return out

    def _set_ready(self, es: dict, status: str, reason: str, message: str) -> None:
        meta = es["metadata"]
        path = f"{ES_GROUP}/namespaces/{meta['namespace']}/externalsecrets/{meta['name']}/status"
        target = ((es.get("spec") or {}).get("target") or {}).get("name") or meta["name"]
        body = {"status": {
            "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message,
                            "lastTransitionTime": _now()}],
            "refreshTime": _now(),
            "binding": {"name": target},
        }}
        self.api.patch(path, body, MERGE)

    def reconcile(self) -> None:
        for es in self.api.items(f"{ES_GROUP}/externalsecrets"):
            conditions = {c.get("type"): c.get("status") for c in (es.get("status") or {}).get("conditions") or []}
            if conditions.get("Ready") == "True":
                continue
            spec, meta = es.get("spec") or {}, es["metadata"]
            data = self._store_data(spec.get("secretStoreRef") or {})
            if data is None:
                self._set_ready(es, "False", "SecretSyncedError", "could not get the secret store")
                continue
            try:
                values = self._resolve(spec, data)
            except (KeyError, ValueError, TypeError) as exc:
                self._set_ready(es, "False", "SecretSyncedError",
                                f"a remote key or property is missing in the store: {exc}")
                continue
            target = spec.get("target") or {}
            name = target.get("name") or meta["name"]
            secret = {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": meta["namespace"],
                             "labels": {"reconcile.external-secrets.io/managed": "true"},
                             "annotations": {"e2e.dox-asdlc.io/simulated": "ExternalSecretsSimulator"}},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
            }
            if target.get("creationPolicy", "Owner") == "Owner":
                secret["metadata"]["ownerReferences"] = [{
                    "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": meta["name"],
                    "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]
            try:
                self.api.create(f"/api/v1/namespaces/{meta['namespace']}/secrets", secret)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                self.api.patch(f"/api/v1/namespaces/{meta['namespace']}/secrets/{name}", {"data": secret["data"]})
            self._set_ready(es, "True", "SecretSynced", "Secret was synced")


class Simulators:
    """Runs the simulators' reconcile loops in one background thread (a context manager)."""

    def __init__(self, api: Api, interval: float = 0.5) -> None:
        self.ingress = IngressSimulator(api)
        self.external_secrets = ExternalSecretsSimulator(api)
        self.interval = interval
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dox-simulators", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for simulator in (self.ingress, self.external_secrets):
                try:
                    simulator.reconcile()
                except ApiError as exc:
                    # A CRD not installed yet (404), or just installed (429/503 while its storage starts), is
                    # normal at start: the next round retries, as a controller's work queue would.
                    if exc.status not in (404, 409, 429, 503):
                        self.errors.append(f"{type(simulator).__name__}: {exc}")
                except OSError as exc:
                    self.errors.append(f"{type(simulator).__name__}: {exc}")
            self._stop.wait(self.interval)

    def __enter__(self) -> "Simulators":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
