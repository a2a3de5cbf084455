"""A real, throwaway Kubernetes control plane on loopback: etcd, API server, controllers, kwok, metrics-server.

``Cluster`` plans every command line first (:meth:`Cluster.plan`, pure: nothing runs),
then :meth:`Cluster.start` generates certificates, starts each process and waits for it
to be ready, and :meth:`Cluster.stop` stops them all by pid. Use it as a context
manager; an ``atexit`` handler and ``PR_SET_PDEATHSIG`` (see :mod:`.process`) stop the
processes even when a test fails or the interpreter is interrupted.

Loopback only. Every process listens on 127.0.0.1, on ports picked free at start, and
everything that dials is pointed at 127.0.0.1:

* etcd: client and peer URLs on 127.0.0.1.
* kube-apiserver: ``--bind-address`` and ``--advertise-address`` 127.0.0.1, with
  ``--endpoint-reconciler-type=none`` (Endpoints may not hold a loopback address, so
  the ``kubernetes`` Service has none). Service cluster IPs stay in 10.96.0.0/16:
  nothing dials them (no kube-proxy, no CNI).
* kube-controller-manager, kube-scheduler: serve health on 127.0.0.1, talk to the API
  server on 127.0.0.1.
* kwok simulates the nodes' kubelets: node addresses 127.0.0.1 (``--node-ip``), its
  server (``--server-address``) on 127.0.0.1, the nodes' kubelet port is that server's.
  Pod IPs come from ``--cidr`` 10.244.0.0/16 and are never dialled.
* metrics-server serves on 127.0.0.1 and scrapes the nodes' InternalIP (127.0.0.1) at
  kwok's port. The API server reaches the aggregated ``metrics.k8s.io`` API through a
  Service of type ExternalName naming 127.0.0.1 (no Endpoints, no ClusterIP).

Nothing here applies upstream manifests: the few objects the harness creates (nodes,
the metrics APIService and its Service) are written out in :mod:`.manifests`; the socket
reading of the loopback proof is :mod:`.sockets`. Both are re-exported from here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import yaml

from ..errors import ToolError
from . import binaries as binaries_mod
from .api import Api
from .manifests import (CPU_ANNOTATION, LOOPBACK, METRICS_SERVICE, NODE_NAME, POD_CIDR, SERVICE_CIDR, STAGES_DIR,
                        kubeconfig, kwok_configuration, metrics_api_manifests, node_manifest)
from .pki import Pki, make_pki
from .process import Process, stop_all, wait_until
from .sockets import is_loopback_endpoint, non_loopback_sockets, sockets
from ..progress import Progress

# Re-exported: these lived here before the split, and callers import them from here.
__all__ = ["ALL_COMPONENTS", "CPU_ANNOTATION", "Cluster", "ClusterError", "Component", "LOOPBACK", "METRICS_SERVICE",
           "NODE_NAME", "POD_CIDR", "Ports", "SERVICE_CIDR", "STAGES_DIR", "free_port", "is_loopback_endpoint",
           "kubeconfig", "kwok_configuration", "metrics_api_manifests", "node_manifest", "non_loopback_sockets",
           "sockets"]

ALL_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "metrics-server")


class ClusterError(ToolError):
    """The control plane could not be started or did not become ready (exit 3), with log tails."""


def free_port(taken: set[int]) -> int:
    """A TCP port free on 127.0.0.1 right now (and not handed out before in this cluster)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port
    raise ClusterError("could not find a free port on 127.0.0.1")


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    metrics_server: int

    @classmethod
    def pick(cls) -> "Ports":
        taken: set[int] = set()
        return cls(*(free_port(taken) for _ in range(7)))


@dataclass
class Component:
    """One planned process: its name and exact command line (and environment additions)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


class Cluster:
    """A control plane in ``workdir`` (a new temporary directory by default).

    :param components: which processes to run (``etcd`` and ``kube-apiserver`` always);
        the broken-render tests need no nodes, so they skip kwok and metrics-server.
    :param keep: keep the work directory (logs, kubeconfig) after :meth:`stop`; it is also
        kept whenever start-up or the block inside ``with`` failed.
    """

    def __init__(self, workdir: Path | None = None, *, components: Iterable[str] = ALL_COMPONENTS,
                 binaries: dict[str, Path] | None = None, keep: bool = False, progress: Progress = print,
                 name: str = "e2e") -> None:
        self.components = tuple(c for c in ALL_COMPONENTS if c in set(components) | {"etcd", "kube-apiserver"})
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"dox-{name}-cluster-"))
        self.keep = keep
        self.progress = progress
        self.ports = Ports.pick()
        self.pki = Pki(self.workdir / "pki")
        self._binaries = binaries
        self.processes: list[Process] = []
        self.api: Api | None = None
        self._failed = False
        self._old_sigterm = None

    # ------------------------------------------------------------------ paths

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def kwok_config_path(self) -> Path:
        return self.workdir / "kwok" / "kwok.yaml"

    def binary(self, name: str) -> str:
        if self._binaries is None:
            self._binaries = binaries_mod.ensure(progress=self.progress).paths
        return str(self._binaries[name])

    # ------------------------------------------------------------------ the plan

    def plan(self) -> list[Component]:
        """Every process's command line, in start order. Pure: nothing is written or started."""
        p, k, ports = self.pki, str(self.kubeconfig_path), self.ports
        delegated = [f"--kubeconfig={k}", f"--authentication-kubeconfig={k}", f"--authorization-kubeconfig={k}"]
        out = [Component("etcd", [
            self.binary("etcd"),
            "--name=e2e",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://{LOOPBACK}:{ports.etcd_client}",
            f"--advertise-client-urls=http://{LOOPBACK}:{ports.etcd_client}",
            f"--listen-peer-urls=http://{LOOPBACK}:{ports.etcd_peer}",
            f"--initial-advertise-peer-urls=http://{LOOPBACK}:{ports.etcd_peer}",
            f"--initial-cluster=e2e=http://{LOOPBACK}:{ports.etcd_peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",  # a throwaway store: durability buys nothing, fsync costs seconds
            "--log-level=warn",
        ]), Component("kube-apiserver", [
            self.binary("kube-apiserver"),
            f"--etcd-servers=http://{LOOPBACK}:{ports.etcd_client}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={ports.apiserver}",
            "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-node-port-range=30000-32767",
            f"--tls-cert-file={p.cert('apiserver')}",
            f"--tls-private-key-file={p.key('apiserver')}",
            f"--client-ca-file={p.ca}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p.service_account_pub}",
            f"--service-account-signing-key-file={p.service_account_key}",
            f"--requestheader-client-ca-file={p.front_proxy_ca}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p.cert('front-proxy-client')}",
            f"--proxy-client-key-file={p.key('front-proxy-client')}",
            "--enable-aggregator-routing=false",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            "--v=1",
        ])]
        if "kube-controller-manager" in self.components:
            out.append(Component("kube-controller-manager", [
                self.binary("kube-controller-manager"), *delegated,
                f"--bind-address={LOOPBACK}",
                f"--secure-port={ports.controller_manager}",
                f"--cert-dir={self.workdir / 'controller-manager'}",
                "--leader-elect=false",
                f"--service-account-private-key-file={p.service_account_key}",
                f"--root-ca-file={p.ca}",
                "--use-service-account-credentials=false",
                "--allocate-node-cidrs=false",
                "--horizontal-pod-autoscaler-sync-period=2s",
                "--horizontal-pod-autoscaler-cpu-initialization-period=10s",
                "--horizontal-pod-autoscaler-initial-readiness-delay=5s",
                "--profiling=false",
                "--v=1",
            ]))
        if "kube-scheduler" in self.components:
            out.append(Component("kube-scheduler", [
                self.binary("kube-scheduler"), *delegated,
                f"--bind-address={LOOPBACK}",
                f"--secure-port={ports.scheduler}",
                "--leader-elect=false",
                "--profiling=false",
            ]))
        if "kwok" in self.components:
            out.append(Component("kwok", [
                self.binary("kwok"),
                f"--kubeconfig={k}",
                f"--config={self.kwok_config_path}",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--node-ip={LOOPBACK}",
                f"--node-port={ports.kwok}",
                f"--server-address={LOOPBACK}:{ports.kwok}",
                f"--tls-cert-file={p.cert('kwok')}",
                f"--tls-private-key-file={p.key('kwok')}",
                f"--cidr={POD_CIDR}",
                "--node-lease-duration-seconds=40",
            ], env={"HOME": str(self.workdir / "kwok")}))
        if "metrics-server" in self.components:
            out.append(Component("metrics-server", [
                self.binary("metrics-server"), *delegated,
                f"--bind-address={LOOPBACK}",
                f"--secure-port={ports.metrics_server}",
                f"--cert-dir={self.workdir / 'metrics-server'}",
                f"--tls-cert-file={p.cert('metrics-server')}",
                f"--tls-private-key-file={p.key('metrics-server')}",
                "--kubelet-insecure-tls",
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-port={ports.kwok}",
                "--kubelet-use-node-status-port",
                "--metric-resolution=10s",  # the smallest metrics-server accepts
                "--kubelet-request-timeout=5s",
                "--profiling=false",
            ]))
        return out

    def config_files(self) -> dict[Path, str]:
        """Every configuration file the harness writes (besides certificates), by path."""
        files = {self.kubeconfig_path: yaml.safe_dump(kubeconfig(self.server, self.pki), sort_keys=False)}
        documents = [kwok_configuration()]
        for stage_file in sorted(STAGES_DIR.glob("*.yaml")):
            documents += [d for d in yaml.safe_load_all(stage_file.read_text()) if d]
        files[self.kwok_config_path] = yaml.safe_dump_all(documents, sort_keys=False)
        return files

    # ------------------------------------------------------------------ start and stop

    def __enter__(self) -> "Cluster":
        try:
            self.start()
        except BaseException:
            self._failed = True
            self.stop()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._failed = True
        self.stop()

    def _fail(self, message: str, *names: str) -> ClusterError:
        self._failed = True
        shown = [p for p in self.processes if not names or p.name in names]
        detail = "\n\n".join(p.describe() for p in shown)
        return ClusterError(f"{message}\n\n{detail}\n\n(work directory kept: {self.workdir})")

    def _launch(self, component: Component) -> Process:
        env = {**os.environ, **component.env} if component.env else None
        process = Process(component.name, component.argv, self.logs / f"{component.name}.log", env=env,
                          cwd=self.workdir)
        self.processes.append(process)
        return process

    def _wait(self, name: str, what: str, check: Callable[[], bool], timeout: float) -> None:
        wait_until(self.processes, self._fail, name, what, check, timeout)

    def _insecure_get(self, url: str) -> bool:
        """GET a component's own health endpoint (self-signed serving certificate) on loopback."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return response.status == 200

    def start(self) -> "Cluster":
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._install_sigterm()
        components = self.plan()  # resolves (and builds, once) the binaries before anything starts
        make_pki(self.pki.directory)
        for path, text in self.config_files().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o600)
        by_name = {c.name: c for c in components}

        self._launch(by_name["etcd"])
        self._wait("etcd", "GET /health", lambda: json.loads(urllib.request.urlopen(
            f"http://{LOOPBACK}:{self.ports.etcd_client}/health", timeout=3).read()).get("health") == "true", 30)

        self._launch(by_name["kube-apiserver"])
        self.api = Api(self.server, self.pki.ca, self.pki.cert("admin"), self.pki.key("admin"))
        self._wait("kube-apiserver", "GET /readyz", lambda: self.api.get("/readyz") == "ok", 120)

        for name, port in (("kube-controller-manager", self.ports.controller_manager),
                           ("kube-scheduler", self.ports.scheduler)):
            if name in by_name:
                self._launch(by_name[name])
        for name, port in (("kube-controller-manager", self.ports.controller_manager),
                           ("kube-scheduler", self.ports.scheduler)):
            if name in by_name:
                self._wait(name, "GET /healthz", lambda port=port: self._insecure_get(
                    f"https://{LOOPBACK}:{port}/healthz"), 60)
        if "kube-controller-manager" in by_name:
            # Pods need their namespace's default ServiceAccount, made by the controller manager.
            self._wait("kube-controller-manager", "ServiceAccount default/default",
                       lambda: self.api.exists("/api/v1/namespaces/default/serviceaccounts/default"), 60)

        if "kwok" in by_name:
            self.api.create("/api/v1/nodes", node_manifest(NODE_NAME))
            self._launch(by_name["kwok"])
            self._wait("kwok", f"node {NODE_NAME} Ready", self._node_ready, 60)

        if "metrics-server" in by_name:
            self._launch(by_name["metrics-server"])
            for manifest in metrics_api_manifests(self.ports.metrics_server, self.pki.ca.read_bytes()):
                path = ("/api/v1/namespaces/kube-system/services" if manifest["kind"] == "Service"
                        else "/apis/apiregistration.k8s.io/v1/apiservices")
                self.api.create(path, manifest)
            self._wait("metrics-server", "APIService v1beta1.metrics.k8s.io Available", self._metrics_available, 90)
        self.progress(f"cluster: {', '.join(self.components)} ready on {LOOPBACK} in "
                      f"{time.monotonic() - started:.1f} s (work directory {self.workdir})")
        return self

    def _node_ready(self) -> bool:
        node = self.api.get(f"/api/v1/nodes/{NODE_NAME}")
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions") or []}
        return conditions.get("Ready") == "True"

    def _metrics_available(self) -> bool:
        service = self.api.get("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")
        conditions = {c["type"]: c["status"] for c in service.get("status", {}).get("conditions") or []}
        return conditions.get("Available") == "True"

    def _install_sigterm(self) -> None:
        """Turn SIGTERM into SystemExit while the cluster runs, so ``with`` blocks unwind and stop it."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            def _raise(signum, frame):
                raise SystemExit(128 + signum)
            self._old_sigterm = signal.signal(signal.SIGTERM, _raise)

    def stop(self) -> None:
        """Stop every process this cluster started (SIGTERM, then SIGKILL); remove the work directory
        unless ``keep`` or a failure asks to keep it."""
        stop_all(self.processes, grace=5.0)
        if self._old_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None
        if not self.keep and not self._failed:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def mark_failed(self) -> None:
        """Keep the work directory (logs) for a failure seen outside the ``with`` block."""
        self._failed = True

    # ------------------------------------------------------------------ helpers for tests

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the pinned kubectl against this cluster; ``check`` raises ClusterError with its stderr."""
        argv = [self.binary("kubectl"), f"--kubeconfig={self.kubeconfig_path}", *args]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["HOME"] = str(self.workdir)  # kubectl's discovery cache lives in the work directory
        proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
        return proc

    def socket_report(self) -> list[tuple[str, str, str, str]]:
        """``(process, protocol, state, "local -> remote")`` for every socket of every process we started."""
        return sockets([p for p in self.processes if p.alive])
