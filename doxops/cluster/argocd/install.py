"""Argo CD's processes for one cluster: Redis, argocd-repo-server and argocd-application-controller on 127.0.0.1.

:class:`ArgoCD` plans every command line and environment (:meth:`ArgoCD.plan`, pure), starts the
processes in order, each waited for, and stops them by pid. Redis is Debian's ``redis-server``
(:func:`redis_server` says how to install it); Argo CD is one pinned binary, the role picked by
``ARGOCD_BINARY_NAME``; its configuration objects are ``config.yaml`` beside this module.
:func:`non_loopback` is the loopback proof's one exception: the controller's metrics listener,
which Argo CD binds on every interface.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import socket
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from ...errors import ToolError
from ..cluster import LOOPBACK, Component, free_port
from ..harness import ARGOCD_NAMESPACE, Progress
from ..process import Process, stop_all, wait_until
from ..sockets import Socket, non_loopback_sockets

CONFIG_FILE = Path(__file__).resolve().parent / "config.yaml"
#: Argo CD's reconciliation period here (timeout.reconciliation; 180 s in an install): how often an
#: Application is compared with git, and how long a resolved branch head is cached.
RECONCILIATION_SECONDS = 5
CONTROLLER = "argocd-application-controller"
REPO_SERVER = "argocd-repo-server"
REDIS = "redis"


#: ``git-verify-wrapper.sh``, written for this harness. Argo CD 3.5's repo-server runs ``git-verify-wrapper.sh
#: REVISION`` in the checkout for every manifest generation (a deprecated call, made whatever
#: ARGOCD_GPG_ENABLED says; its container image provides the command) and fails the generation when the
#: command cannot run. GPG verification is off here, so the answer is only recorded: what ``git
#: verify-commit`` says (nothing for an unsigned commit, which the call reports as "not signed").
GIT_VERIFY_WRAPPER = """#!/bin/sh
# Written by doxops.cluster.argocd.install for the e2e harness (see GIT_VERIFY_WRAPPER there).
[ "$#" -eq 1 ] || { echo "usage: git-verify-wrapper.sh REVISION" >&2; exit 2; }
output=$(git verify-commit "$1" 2>&1)
code=$?
case "$code" in
  0|1) [ -z "$output" ] || printf '%s\\n' "$output" ;;  # 1: unsigned or not verified; GPG is off
  *) printf '%s\\n' "$output" >&2; exit "$code" ;;
esac
"""


class ArgoCDError(ToolError):
    """Argo CD or its Redis could not be started or did not become ready (exit 3), with log tails."""


# ---------------------------------------------------------------------- prerequisites


def redis_server() -> str:
    """Debian's redis-server (Argo CD's cache), or a clear error saying how to install it."""
    path = shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
                                                 if os.access(p, os.X_OK)), None)
    if not path:
        raise ToolError("redis-server: not found; Argo CD's cache needs it. Install Debian's package: "
                        "`sudo apt-get install redis-server` (only the binary is used; no service is started)")
    return path


def git_binary() -> str:
    path = shutil.which("git")
    if not path:
        raise ToolError("git: not found; the Argo CD e2e needs it for the local remote (`apt-get install git`)")
    return path


# ---------------------------------------------------------------------- Argo CD's processes


@dataclass
class ArgoPorts:
    redis: int
    repo_server: int
    repo_server_metrics: int
    controller_metrics: int
    #: Given to the controller as its commit-server address; nothing listens there (no hydrator).
    commit_server: int

    @classmethod
    def pick(cls, taken: set[int]) -> "ArgoPorts":
        return cls(*(free_port(taken) for _ in range(5)))


class ArgoCD:
    """Redis, argocd-repo-server and argocd-application-controller for one cluster, on 127.0.0.1.

    :meth:`plan` is pure (the command lines and environments); :meth:`start` launches them in order,
    each waited for; :meth:`stop` stops them by pid.
    """

    def __init__(self, workdir: Path, kubeconfig: Path, argocd: str, redis: str, *, taken: set[int] | None = None,
                 progress: Progress = print) -> None:
        self.workdir = Path(workdir)
        self.kubeconfig = Path(kubeconfig)
        self.argocd, self.redis = argocd, redis
        self.ports = ArgoPorts.pick(set(taken or ()))
        self.progress = progress
        self.processes: list[Process] = []

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    def _dir(self, name: str) -> Path:
        return self.workdir / name

    def _environment(self, role: str | None, **extra: str) -> dict[str, str]:
        """An explicit environment: no proxies, no user git or kube configuration, per-run paths."""
        env = {
            "PATH": os.pathsep.join([str(self._dir("bin")), os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")]),
            "HOME": str(self._dir("home")),
            "TMPDIR": str(self._dir("tmp")),
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
        }
        if role:
            env.update({
                "ARGOCD_BINARY_NAME": role,
                "ARGOCD_GPG_ENABLED": "false",
                "ARGOCD_GNUPGHOME": str(self._dir("gnupg")),
                "ARGOCD_GPG_DATA_PATH": str(self._dir("gpg-source")),
                "ARGOCD_TLS_DATA_PATH": str(self._dir("tls")),
                "ARGOCD_SSH_DATA_PATH": str(self._dir("ssh")),
                "ARGOCD_PLUGINSOCKFILEPATH": str(self._dir("plugins")),
                "ARGOCD_APP_CONF_PATH": str(self._dir("app-config")),
                "ARGOCD_ASK_PASS_SOCK": str(self._dir("tmp") / "reposerver-ask-pass.sock"),
                # timeout.reconciliation, as an install's pods read it from argocd-cm: the controller's
                # resync period and the repo-server's cache of resolved branch heads.
                "ARGOCD_RECONCILIATION_TIMEOUT": f"{RECONCILIATION_SECONDS}s",
                "ARGOCD_RECONCILIATION_JITTER": "0s",
            })
        env.update(extra)
        return env

    def plan(self) -> list[Component]:
        """Every process's command line and environment, in start order. Pure: nothing runs."""
        p = self.ports
        redis_address = f"{LOOPBACK}:{p.redis}"
        return [
            Component(REDIS, [
                self.redis, "--port", str(p.redis), "--bind", LOOPBACK, "--protected-mode", "yes",
                "--save", "", "--appendonly", "no", "--dir", str(self._dir("redis")),
                "--daemonize", "no", "--logfile", "",
            ], env=self._environment(None)),
            Component(REPO_SERVER, [
                self.argocd,
                f"--address={LOOPBACK}", f"--port={p.repo_server}",
                f"--metrics-address={LOOPBACK}", f"--metrics-port={p.repo_server_metrics}",
                "--disable-tls", "--client-ca-path=",  # plaintext gRPC on loopback: no mTLS material
                f"--redis={redis_address}",
                "--parallelismlimit=2",
                "--logformat=text", "--loglevel=info",
            ], env=self._environment(REPO_SERVER)),
            Component(CONTROLLER, [
                self.argocd,
                f"--namespace={ARGOCD_NAMESPACE}",
                f"--repo-server={LOOPBACK}:{p.repo_server}", "--repo-server-plaintext",
                f"--commit-server={LOOPBACK}:{p.commit_server}",
                f"--redis={redis_address}",
                # Binds every interface (no address flag exists): a free port, named by the loopback check.
                f"--metrics-port={p.controller_metrics}",
                "--status-processors=4", "--operation-processors=4", "--kubectl-parallelism-limit=4",
                "--logformat=text", "--loglevel=info",
            ], env=self._environment(CONTROLLER, ARGOCD_FAKE_IN_CLUSTER="true", KUBECONFIG=str(self.kubeconfig))),
        ]

    def config_objects(self) -> list[dict]:
        """The objects of config.yaml, argocd-secret given a fresh server.secretkey."""
        docs = [d for d in yaml.safe_load_all(CONFIG_FILE.read_text()) if d]
        for doc in docs:
            if doc["kind"] == "Secret" and doc["metadata"]["name"] == "argocd-secret":
                doc["data"] = {"server.secretkey": base64.b64encode(secrets.token_bytes(32)).decode()}
        return docs

    # ------------------------------------------------------------------ start and stop

    def _fail(self, message: str, *names: str) -> ArgoCDError:
        shown = [p for p in self.processes if not names or p.name in names]
        return ArgoCDError(message + "\n\n" + "\n\n".join(p.describe() for p in shown))

    def _wait(self, name: str, what: str, check: Callable[[], bool], timeout: float) -> None:
        wait_until(self.processes, self._fail, name, what, check, timeout)

    def _redis_ping(self) -> bool:
        with socket.create_connection((LOOPBACK, self.ports.redis), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def _healthz(self, port: int) -> bool:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/healthz", timeout=3) as response:
            return response.status == 200

    def start(self, apply_config: Callable[[list[dict]], None]) -> "ArgoCD":
        """Redis, then the configuration objects (through ``apply_config``), the repo-server, the controller."""
        started = time.monotonic()
        for name in ("bin", "home", "tmp", "redis", "gnupg", "gpg-source", "tls", "ssh", "plugins", "app-config"):
            self._dir(name).mkdir(parents=True, exist_ok=True)
        self._dir("gnupg").chmod(0o700)
        wrapper = self._dir("bin") / "git-verify-wrapper.sh"
        wrapper.write_text(GIT_VERIFY_WRAPPER)
        wrapper.chmod(0o755)
        by_name = {c.name: c for c in self.plan()}
        self._launch(by_name[REDIS])
        self._wait(REDIS, "PING", self._redis_ping, 30)
        apply_config(self.config_objects())
        self._launch(by_name[REPO_SERVER])
        self._wait(REPO_SERVER, "GET /healthz", lambda: self._healthz(self.ports.repo_server_metrics), 60)
        self._launch(by_name[CONTROLLER])
        self._wait(CONTROLLER, "GET /healthz", lambda: self._healthz(self.ports.controller_metrics), 90)
        self.progress(f"argocd: redis :{self.ports.redis}, repo-server :{self.ports.repo_server}, controller "
                      f"(metrics :{self.ports.controller_metrics}) ready in {time.monotonic() - started:.1f} s")
        return self

    def _launch(self, component: Component) -> Process:
        process = Process(component.name, component.argv, self.logs / f"{component.name}.log", env=component.env,
                          cwd=self.workdir)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        stop_all(self.processes, grace=5.0)

    def log_text(self) -> str:
        out = []
        for process in self.processes:
            with contextlib.suppress(OSError):
                out.append(process.log.read_text(errors="replace"))
        return "\n".join(out)



# ---------------------------------------------------------------------- the loopback proof's one exception


def metrics_listener(port: int | None) -> Callable[[Socket], bool]:
    """Whether a socket is the application controller's metrics listener (every interface, at ``port``)."""

    def allowed(entry: Socket) -> bool:
        name, protocol, state, pair = entry
        local = pair.split(" -> ")[0]
        return bool(name == CONTROLLER and protocol == "tcp" and state == "LISTEN" and port
                    and local in (f"0.0.0.0:{port}", f"[::]:{port}"))

    return allowed


def non_loopback(report: list[Socket], controller_metrics_port: int | None) -> list[str]:
    """Sockets of a :func:`~doxops.cluster.sockets.sockets` report touching anything but 127.0.0.0/8 or ::1,
    except the one allowed: the application controller's metrics listener (every interface, at its port)."""
    return non_loopback_sockets(report, allowed=metrics_listener(controller_metrics_port))
