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
    by :meth:`ExternalSecretsSimulator.create_store` with freshly generated random values
    (``secrets.token_urlsafe``) for exactly the remote keys and properties the
    ExternalSecrets ask for. For each ExternalSecret it reads that store, creates the
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
from datetime import datetime, timezone

from .api import MERGE, Api, ApiError

INGRESS_CLASS = "nginx"
INGRESS_CONTROLLER = "k8s.io/ingress-nginx"
INGRESS_ADDRESS = "127.0.0.1"
ES_GROUP = "/apis/external-secrets.io/v1"


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

    @staticmethod
    def wanted_remote_values(external_secrets: list[dict]) -> dict[tuple[str, str], dict[str, str]]:
        """``{(store kind, store name): {remote key: JSON object of generated properties}}``.

        Each ``data[].remoteRef`` asks for one property of a remote key; each
        ``dataFrom[].extract`` for a whole key (given two properties, ``username`` and
        ``password``, when nothing else names its properties).
        """
        stores: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
        for es in external_secrets:
            spec = es.get("spec") or {}
            ref = spec.get("secretStoreRef") or {}
            store = stores.setdefault((ref.get("kind", "SecretStore"), ref.get("name", "")), {})
            for item in spec.get("data") or []:
                remote = item.get("remoteRef") or {}
                store.setdefault(remote.get("key", ""), {})[remote.get("property") or "value"] = \
                    secrets.token_urlsafe(24)
            for item in spec.get("dataFrom") or []:
                key = (item.get("extract") or {}).get("key")
                if key and not store.get(key):
                    store[key] = {"username": "e2e-" + secrets.token_hex(4), "password": secrets.token_urlsafe(24)}
        return {k: {key: json.dumps(v, sort_keys=True) for key, v in keys.items()} for k, keys in stores.items()}

    def create_store(self, external_secrets: list[dict]) -> list[str]:
        """Create the stores the ExternalSecrets name, filled with generated values; returns their names."""
        names = []
        for (kind, name), values in self.wanted_remote_values(external_secrets).items():
            if kind != "ClusterSecretStore":
                raise ValueError(f"the simulator provides ClusterSecretStores only, not {kind} {name}")
            self.api.create(f"{ES_GROUP}/clustersecretstores", {
                "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
                "metadata": {"name": name,
                             "annotations": {"e2e.dox-asdlc.io/simulated": "test store with generated values"}},
                "spec": {"provider": {"fake": {"data": [{"key": k, "value": v} for k, v in sorted(values.items())]}}},
            })
            names.append(name)
        return names

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
            except (KeyError, ValueError, TypeError):
                self._set_ready(es, "False", "SecretSyncedError", "a remote key or property is missing in the store")
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
