"""The Argo CD scenarios of one environment: first sync, a merged pull request, prune, self-heal, steady state.

Each is a method of :class:`ArgoScenario` and ends in named checks; a milestone reached after a
wait (the first sync, the workloads Running, an operator's prune) is an observation. The last,
:meth:`ArgoScenario.loopback_argocd`, reads the sockets sampled during the whole run.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import yaml

from ..api import MERGE
from ..cluster import NODE_NAME
from ..harness import is_running, label_selector, load_docs
from ..sockets import SocketSampler, is_loopback_endpoint
from .harness import APPLICATIONS, ArgoHarness, resource_path, short
from .install import CONTROLLER, RECONCILIATION_SECONDS, REDIS, REPO_SERVER
from .remote import IN_CLUSTER, set_value

#: Reconciliations the steady-state step watches with nothing changing.
STEADY_RESYNCS = 3
#: The pull request's values: (top-level key, key) in environments/<env>/values.yaml.
MAX_REPLICAS_VALUE = ("workers", "maxReplicas")
LOG_LEVEL_VALUE = ("orchestrator", "logLevel")
#: The chart template the prune step deletes (in the scratch copy) before re-rendering.
PRUNED_TEMPLATE = "helm/dox-asdlc/charts/hitl-ui/templates/networkpolicy.yaml"
#: Who the prod prune sync is initiated by (what `argocd app sync --prune` records as the user).
OPERATOR = "e2e-operator"


class ArgoScenario(ArgoHarness):
    """The Argo CD scenarios of one environment on one cluster with Argo CD."""

    # --------------------------------------------------------------- 1. the first sync

    def first_sync(self) -> None:
        started = time.monotonic()
        self.wait_apps(f"every Application Synced and Healthy at the remote's head {short(self.head)}",
                       lambda: self.synced_at(self.head, operation=True), 240, interval=1.0)
        seconds = time.monotonic() - started
        app = self.app(self.child)
        resources = (app.get("status") or {}).get("resources") or []
        self.observe(f"first sync: {', '.join(self.app_names)} Synced and Healthy at {short(self.head)}, "
                     f"{seconds:.0f} s after the bootstrap; {self.child} manages {len(resources)} resources")
        wanted = {}
        for kind in ("Deployment", "StatefulSet"):
            for doc in self.docs_of(kind):
                replicas = doc["spec"].get("replicas")
                if replicas is None:  # an HPA owns it (at its minimum here), else the API server's default
                    hpa = next((h for h in self.docs_of("HorizontalPodAutoscaler")
                                if h["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]), None)
                    replicas = hpa["spec"].get("minReplicas", 1) if hpa else 1
                wanted[doc["metadata"]["name"]] = (label_selector(doc["spec"]["selector"]["matchLabels"]), replicas)

        def running() -> dict[str, int] | None:
            counts = {name: sum(1 for p in self.running(sel) if p["spec"].get("nodeName") == NODE_NAME)
                      for name, (sel, _) in wanted.items()}
            return counts if all(counts[n] == r for n, (_, r) in wanted.items()) else None

        counts = self.wait(f"first sync: workloads Running on simulated node {NODE_NAME}", running, 60)
        self.observe(f"workloads Running on simulated node {NODE_NAME}: "
                     + ", ".join(f"{n} {c}" for n, c in sorted(counts.items())))

    # --------------------------------------------------------------- 2. a merged pull request

    def pull_request(self) -> None:
        pool = self.role("autoscaled-pool")
        singleton = self.role("singleton")
        hpa_doc = next(h for h in self.docs_of("HorizontalPodAutoscaler")
                       if h["spec"]["scaleTargetRef"]["name"] == pool["metadata"]["name"])
        hpa_path = resource_path(hpa_doc, self.namespace)
        configmap = next(e["configMapRef"]["name"] for e in singleton["spec"]["template"]["spec"]["containers"][0]
                         .get("envFrom") or [] if "configMapRef" in e)
        cm_path = f"{self.ns}/configmaps/{configmap}"
        old_max, low = hpa_doc["spec"]["maxReplicas"], hpa_doc["spec"]["minReplicas"]
        new_max = max(low, old_max - 2) if old_max - 2 >= low else min(10, old_max + 1)
        old_level = self.doc("ConfigMap", configmap)["data"]["LOG_LEVEL"]
        new_level = "DEBUG" if old_level != "DEBUG" else "INFO"
        consumers = [d["metadata"]["name"] for d in self.config_consumers(configmap)]
        others = [d["metadata"]["name"] for d in self.docs_of("Deployment") if d["metadata"]["name"] not in consumers]
        before = {d["metadata"]["name"]: set(self.replica_sets(d)) for d in self.docs_of("Deployment")}
        old_checksums = {n: self.rendered_checksum(n) for n in consumers}

        values = self.remote.work / "environments" / self.env.name / "values.yaml"
        text = set_value(values.read_text(), *MAX_REPLICAS_VALUE, new_max)
        values.write_text(set_value(text, *LOG_LEVEL_VALUE, new_level))
        self.remote.render()
        changed = sorted(f for f in self.remote.changed_files() if f.startswith("rendered/"))
        self.head = self.remote.commit(f"{self.env.name}: workers.maxReplicas {old_max} -> {new_max}, orchestrator "
                                       f"LOG_LEVEL {old_level} -> {new_level}")
        pushed = time.monotonic()
        self.observe(f"pull request {short(self.head)} merged: values.yaml changed, re-rendered: "
                     f"{', '.join(Path(f).name for f in changed)}")
        self.reload()
        new_checksums = {n: self.rendered_checksum(n) for n in consumers}
        self.require(f"the render changed the checksum annotation of {', '.join(consumers)}",
                     bool(consumers) and all(old_checksums[n] != new_checksums[n] for n in consumers))

        self.wait_apps(f"{self.child} synced to the merged commit {short(self.head)}",
                       lambda: self.synced_at(self.head, operation=True), 120)
        seconds = time.monotonic() - pushed
        app = self.app(self.child)
        op = app["status"]["operationState"]
        history = app["status"].get("history") or []
        self.check(f"sync revision became the merged commit {short(self.head)}",
                   app["status"]["sync"]["revision"] == self.head and op["syncResult"]["revision"] == self.head
                   and bool(history) and history[-1].get("revision") == self.head,
                   f"{seconds:.0f} s after the push; operation {op['phase']} ({'automated' if (op.get('operation') or {}).get('initiatedBy', {}).get('automated') else 'manual'}), history {len(history)} entries")

        live_max = self.api.get(hpa_path)["spec"]["maxReplicas"]
        self.check(f"HPA {hpa_doc['metadata']['name']}: maxReplicas {old_max} -> {new_max} in the cluster",
                   live_max == new_max, f"live {live_max}")
        live_level = (self.api.get(cm_path).get("data") or {}).get("LOG_LEVEL")
        self.check(f"ConfigMap {configmap}: LOG_LEVEL {old_level} -> {new_level} in the cluster",
                   live_level == new_level, f"live {live_level}")

        for name in consumers:
            deployment = self.doc("Deployment", name)
            selector = label_selector(deployment["spec"]["selector"]["matchLabels"])
            want = deployment["spec"].get("replicas", 1)

            def rolled(name=name, selector=selector, want=want, deployment=deployment):
                live = self.api.get(f"{self.apps}/deployments/{name}")
                status = live.get("status") or {}
                if status.get("observedGeneration", 0) < live["metadata"]["generation"] or \
                        status.get("updatedReplicas") != want or status.get("availableReplicas") != want:
                    return None
                pods = self.pods(selector)
                if len(pods) != want or not all(is_running(p) for p in pods):
                    return None
                if any((p["metadata"].get("annotations") or {}).get("checksum/config") != new_checksums[name]
                       for p in pods):
                    return None
                sets = self.replica_sets(deployment)
                active = [n for n, rs in sets.items() if (rs["spec"].get("replicas") or 0) > 0]
                return active if len(active) == 1 else None

            active = self.wait(f"{name}: rolled to a new ReplicaSet with the new checksum", rolled, 90)
            self.check(f"{name} (reads ConfigMap {configmap}) rolled to a new ReplicaSet", active[0] not in before[name],
                       f"{active[0]} (new; before: {', '.join(sorted(before[name]))}), pods carry "
                       f"checksum/config {new_checksums[name][:12]}")
        unrolled = {n: set(self.replica_sets(self.doc("Deployment", n))) == before[n] for n in others}
        self.check(f"Deployments that do not read {configmap} did not roll ({', '.join(others)})", all(unrolled.values()),
                   ", ".join(f"{n}: {'same ReplicaSets' if ok else 'new ReplicaSet'}" for n, ok in unrolled.items()))

    # --------------------------------------------------------------- 3. prune

    def prune(self) -> None:
        settings = yaml.safe_load(self.remote.settings_file.read_text())
        declared = bool(settings["spec"]["prune"])
        live_prune = (self.app(self.child)["spec"].get("syncPolicy") or {}).get("automated", {}).get("prune", False)
        self.check(f"{self.child}: automated prune {live_prune}, as settings.yaml declares ({declared})",
                   bool(live_prune) == declared)

        template = self.remote.work / PRUNED_TEMPLATE
        self.require(f"{PRUNED_TEMPLATE} exists in the copy", template.exists())
        before = {str(p.relative_to(self.manifests)): d for p, d in load_docs(self.manifests / "workloads")}
        template.unlink()
        self.remote.render()
        after = {str(p.relative_to(self.manifests)) for p in (self.manifests / "workloads").rglob("*.yaml")}
        removed = {rel: doc for rel, doc in before.items() if rel not in after}
        changed = [f for f in self.remote.changed_files() if f.startswith("rendered/")]
        self.require(f"removing {Path(PRUNED_TEMPLATE).name} from the chart removes rendered objects and changes "
                     "nothing else", bool(removed) and len(changed) == len(removed),
                     f"removed {sorted(removed)}, changed {changed}")
        names = [f"{d['kind']}/{d['metadata']['name']}" for d in removed.values()]
        paths = [resource_path(d, self.namespace) for d in removed.values()]
        self.head = self.remote.commit(f"{self.env.name}: remove {PRUNED_TEMPLATE}")
        pushed = time.monotonic()
        self.reload()

        if declared:
            def pruned() -> bool:
                return self.synced_at(self.head, operation=True) and not any(self.api.exists(p) for p in paths)

            self.wait_apps(f"prune: true: {', '.join(names)} deleted by the sync of {short(self.head)}", pruned, 120)
            tracked = [r for r in (self.app(self.child)["status"].get("resources") or [])
                       if f"{r.get('kind')}/{r.get('name')}" in names]
            self.check(f"prune: true: {', '.join(names)} gone from the cluster and from the Application",
                       not tracked, f"{time.monotonic() - pushed:.0f} s after the push")
            return

        def flagged():
            app = self.app(self.child)
            sync, _, revision = self.state(app)
            entries = [r for r in app["status"].get("resources") or [] if f"{r.get('kind')}/{r.get('name')}" in names]
            if revision == self.head and sync == "OutOfSync" and len(entries) == len(names) and \
                    all(r.get("requiresPruning") for r in entries):
                return entries
            return None

        entries = self.wait_apps(f"prune: false: {', '.join(names)} reported as requiring pruning", flagged, 120)
        def last_operation(app: dict) -> tuple:
            return (len(app["status"].get("history") or []),
                    (app["status"].get("operationState") or {}).get("startedAt"))

        before = last_operation(self.app(self.child))
        time.sleep(2 * RECONCILIATION_SECONDS + 1)  # two more reconciliations: automated sync must not prune
        still = all(self.api.exists(p) for p in paths)
        app = self.app(self.child)
        self.check(f"prune: false: {', '.join(names)} still in the cluster, the Application OutOfSync with "
                   "requiresPruning, no automated sync", still and flagged() is not None
                   and last_operation(app) == before,
                   "; ".join(f"{r.get('kind')}/{r.get('name')} status={r.get('status')} "
                             f"requiresPruning={r.get('requiresPruning')}" for r in entries)
                   + f"; health {self.state(app)[1]}")

        # An operator looks at the live diff and syncs with prune: what `argocd app sync --prune` asks for.
        self.api.patch(f"{APPLICATIONS}/{self.child}", {"operation": {
            "initiatedBy": {"username": OPERATOR},
            "sync": {"revision": self.head, "prune": True,
                     "syncOptions": (app["spec"].get("syncPolicy") or {}).get("syncOptions") or []}}}, MERGE)

        def operator_pruned() -> bool:
            if any(self.api.exists(p) for p in paths) or not self.synced_at(self.head):
                return False
            op = (self.app(self.child).get("status") or {}).get("operationState") or {}
            return op.get("phase") == "Succeeded" and \
                (op.get("operation") or {}).get("initiatedBy", {}).get("username") == OPERATOR

        self.wait_apps(f"prune: false: an operator's sync with prune deletes {', '.join(names)}", operator_pruned, 90)
        self.observe(f"prune: false: an operator's sync with prune (initiated by {OPERATOR}) deleted "
                     f"{', '.join(names)}; Synced again")

    # --------------------------------------------------------------- 4. self-heal

    def self_heal(self) -> None:
        singleton = self.role("singleton")
        name = singleton["metadata"]["name"]
        path = f"{self.apps}/deployments/{name}"
        selector = label_selector(singleton["spec"]["selector"]["matchLabels"])
        before = (self.app(self.child)["status"].get("operationState") or {}).get("startedAt")
        scaled_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # Argo CD's timestamps: whole seconds
        self.cluster.kubectl("scale", f"deployment/{name}", "--replicas=2", "-n", self.namespace)
        scaled = time.monotonic()
        peak = 0

        def healed() -> bool:
            nonlocal peak
            live = self.api.get(path)
            pods = self.pods(selector)
            peak = max(peak, live["spec"].get("replicas", 0))
            return live["spec"].get("replicas") == 1 and len(pods) == 1 and is_running(pods[0]) and \
                self.synced_at(self.head, names=[self.child])

        self.wait_apps(f"self-heal: {name} scaled to 2 by hand returns to 1", healed, 90)
        seconds = time.monotonic() - scaled
        op = self.app(self.child)["status"].get("operationState") or {}
        initiated = (op.get("operation") or {}).get("initiatedBy") or {}
        synced = [f"{r.get('kind')}/{r.get('name')}" for r in (op.get("syncResult") or {}).get("resources") or []]
        self.check(f"self-heal: {name} scaled to 2 by hand is back to 1 replica, 1 pod, by an automated sync",
                   # a new operation: a later start, or (whole seconds) one started in or after the scale's second
                   (op.get("startedAt") != before or str(op.get("startedAt") or "") >= scaled_at)
                   and initiated.get("automated") is True
                   and f"Deployment/{name}" in synced and op.get("phase") == "Succeeded",
                   f"{seconds:.0f} s; replicas seen {max(peak, 2)} -> 1; operation {op.get('phase')} "
                   f"({'automated' if initiated.get('automated') else initiated.get('username')}) applied "
                   f"{', '.join(synced) or 'nothing'}")

    # --------------------------------------------------------------- 5. steady state

    def steady_state(self) -> None:
        def snapshot(app: dict) -> tuple:
            status = app.get("status") or {}
            return (len(status.get("history") or []), (status.get("operationState") or {}).get("startedAt"))

        first = {n: self.app(n) for n in self.app_names}
        start = {n: snapshot(a) for n, a in first.items()}
        last = {n: (a.get("status") or {}).get("reconciledAt") for n, a in first.items()}
        counts = {n: 0 for n in self.app_names}
        problems: list[str] = []
        began = time.monotonic()
        deadline = began + (STEADY_RESYNCS + 3) * RECONCILIATION_SECONDS + 20
        while time.monotonic() < deadline and min(counts.values()) < STEADY_RESYNCS:
            for name in self.app_names:
                app = self.app(name)
                reconciled = (app.get("status") or {}).get("reconciledAt")
                if reconciled != last[name]:
                    counts[name] += 1
                    last[name] = reconciled
                sync, health, revision = self.state(app)
                if (sync, health, revision) != ("Synced", "Healthy", self.head):
                    off = [f"{r.get('kind')}/{r.get('name')}" for r in app["status"].get("resources") or []
                           if r.get("status") != "Synced"]
                    problems.append(f"{time.monotonic() - began:.0f}s {name}: {sync}/{health} at {short(revision)}"
                                    + (f" ({', '.join(off)})" if off else ""))
            time.sleep(0.5)
        end = {n: snapshot(self.app(n)) for n in self.app_names}
        self.check(f"steady state: Synced and Healthy through {STEADY_RESYNCS}+ reconciliations each, no sync "
                   "started (no perpetual diff)",
                   min(counts.values()) >= STEADY_RESYNCS and not problems and start == end,
                   f"reconciliations {counts} in {time.monotonic() - began:.0f} s; "
                   + (f"deviations: {'; '.join(problems[:5])}; " if problems else "")
                   + ("history and last operation unchanged" if start == end else f"operations ran: {start} -> {end}"))

    # --------------------------------------------------------------- 6. loopback

    def loopback_argocd(self, sampler: SocketSampler) -> None:
        now = sampler.sample()
        allowed = [f"{n}: {proto} {state} {pair}" for n, proto, state, pair in now
                   if n == CONTROLLER and state == "LISTEN" and not is_loopback_endpoint(pair.split(" -> ")[0])]
        names = {n for n, *_ in now}
        self.check("loopback only: every TCP/UDP socket of the control plane and Argo CD, in every state, sampled "
                   "every second during the whole run, but the controller's metrics listener",
                   sampler.proved() and {REDIS, REPO_SERVER, CONTROLLER} <= names,
                   f"{sampler.summary()}; processes with sockets now: {sorted(names)}; allowed: {allowed or 'none'}")
        logs = self.argocd.log_text()
        lookups = sorted(set(re.findall(r"lookup ([\w.-]+)", logs)))
        dials = sorted({address for address in re.findall(r"dial (?:tcp|udp)\w* ([\d.]+|\[[0-9a-f:.]+\]):\d+", logs)
                        if not is_loopback_endpoint(address + ":0")})
        self.check("Argo CD looked up no name and dialled no address beyond 127.0.0.0/8 (its logs)",
                   not lookups and not dials, f"lookups {lookups or 'none'}, dials {dials or 'none'}")
        wrong = []
        for name in self.app_names:
            spec = self.app(name)["spec"]
            if spec["source"]["repoURL"] != self.remote.url or spec["destination"]["server"] != IN_CLUSTER:
                wrong.append(name)
        self.check(f"Applications read {self.remote.url} and deploy to {IN_CLUSTER} (a name; the kubeconfig's "
                   f"{self.cluster.server} is dialled)", not wrong, ", ".join(wrong))


