"""Argo CD in the loop: a merge to a local git remote, synced into the local control plane by the real Argo CD.

For each environment, :func:`run_env` builds what a platform engineer has, on this machine only:

1. **A remote.** A scratch copy of this repository (:func:`doxops.paths.copy_working_tree`) becomes a
   git working copy whose ``origin`` is a bare repository on disk, reached as ``file://`` (Argo CD's
   repoURL). The environment's one settings file, ``environments/<env>/argocd/settings.yaml``, is
   pointed at that remote and at the cluster Argo CD runs in (``https://kubernetes.default.svc``),
   ``./dox render`` is run in the copy and the change is committed and pushed, as a pull request would
   be. A check proves the committed ``rendered/<env>`` keeps its meaning: the workloads are byte for
   byte the repository's, the Argo CD objects differ in the repository URL and destination only.
2. **A cluster with Argo CD.** The control plane of :mod:`.cluster` (with the same simulators), the
   CRDs, Secrets and volumes as :mod:`.e2e` provides them, then :class:`ArgoCD`: Redis (Debian's
   ``redis-server``), ``argocd-repo-server`` and ``argocd-application-controller`` (one pinned binary,
   the role picked by ``ARGOCD_BINARY_NAME``), with the configuration objects of
   ``argocd-config.yaml``. The environment is bootstrapped with the real task,
   ``./dox argocd-bootstrap --env <env>``, run inside the copy against this cluster.
3. **The scenarios** (:class:`ArgoScenario`), each a named check in the report: the first sync (every
   Application Synced and Healthy at the remote's head, the workloads Running on the simulated node);
   a merged pull request (``workers.maxReplicas`` and the orchestrator's ``LOG_LEVEL`` changed through
   values and re-rendered: the sync revision becomes the new commit, the HPA changes, the ConfigMap's
   consumer rolls to a new ReplicaSet and nothing else rolls); prune (a chart template removed: gone
   with ``prune: true``, still there and reported ``requiresPruning`` with ``prune: false`` until an
   operator's sync with prune); self-heal (the orchestrator scaled to 2 by hand returns to 1); steady
   state (Synced and Healthy through several reconciliations, no sync started: no perpetual diff);
   loopback (every socket of every process); teardown (every process stopped, every port closed).

Loopback only. Redis, the repo-server (gRPC and metrics) listen on 127.0.0.1 at free ports. The
controller talks to the API server at 127.0.0.1 through the admin kubeconfig
(``ARGOCD_FAKE_IN_CLUSTER=true``: the in-cluster destination ``https://kubernetes.default.svc`` is a
name, its connection is the kubeconfig's), to the repo-server and Redis at 127.0.0.1, and to nothing
else: its commit-server address is a loopback port nobody listens on (the hydrator is off, it is never
dialled). One listening socket is not on loopback and cannot be: the controller's metrics listener
binds every interface (Argo CD has no flag for its address), so it gets a free port and the loopback
check names it as the one exception; nothing is sent through it. Git reads the bare repository from
disk. The processes get an explicit environment (no proxies, no user git or kube configuration).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from .. import operate
from ..environments import Environment
from ..errors import ToolError
from ..paths import REPO_ROOT, copy_working_tree
from . import e2e as e2e_mod
from .api import MERGE
from .cluster import (LOOPBACK, NODE_NAME, Cluster, Component, free_port, is_loopback_endpoint, non_loopback_sockets,
                      sockets)
from .e2e import (ARGOCD_NAMESPACE, Check, EnvReport, Scenario, ScenarioFailed, _attempt, _is_running, _load_docs,
                  _selector)
from .process import Process, stop_all, wait_until
from .simulators import Simulators

Progress = Callable[[str], None]

CONFIG_FILE = Path(__file__).resolve().parent / "argocd-config.yaml"
#: The destination every environment's Applications get here: Argo CD's in-cluster cluster. With
#: ARGOCD_FAKE_IN_CLUSTER its connection is the kubeconfig's (127.0.0.1); the URL is never dialled.
IN_CLUSTER = "https://kubernetes.default.svc"
#: Argo CD's reconciliation period here (timeout.reconciliation; 180 s in an install): how often an
#: Application is compared with git, and how long a resolved branch head is cached.
RECONCILIATION_SECONDS = 5
#: Reconciliations the steady-state step watches with nothing changing.
STEADY_RESYNCS = 3
APPLICATIONS = f"/apis/argoproj.io/v1alpha1/namespaces/{ARGOCD_NAMESPACE}/applications"
#: The pull request's values: (top-level key, key) in environments/<env>/values.yaml.
MAX_REPLICAS_VALUE = ("workers", "maxReplicas")
LOG_LEVEL_VALUE = ("orchestrator", "logLevel")
#: The chart template the prune step deletes (in the scratch copy) before re-rendering.
PRUNED_TEMPLATE = "helm/dox-asdlc/charts/hitl-ui/templates/networkpolicy.yaml"
#: Who the prod prune sync is initiated by (what `argocd app sync --prune` records as the user).
OPERATOR = "e2e-operator"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "dox e2e", "GIT_AUTHOR_EMAIL": "e2e@dox-asdlc.invalid",
                "GIT_COMMITTER_NAME": "dox e2e", "GIT_COMMITTER_EMAIL": "e2e@dox-asdlc.invalid"}
CONTROLLER = "argocd-application-controller"
REPO_SERVER = "argocd-repo-server"
REDIS = "redis"


#: ``git-verify-wrapper.sh``, written for this harness. Argo CD 3.5's repo-server runs ``git-verify-wrapper.sh
#: REVISION`` in the checkout for every manifest generation (a deprecated call, made whatever
#: ARGOCD_GPG_ENABLED says; its container image provides the command) and fails the generation when the
#: command cannot run. GPG verification is off here, so the answer is only recorded: what ``git
#: verify-commit`` says (nothing for an unsigned commit, which the call reports as "not signed").
GIT_VERIFY_WRAPPER = """#!/bin/sh
# Written by doxops.cluster.argocd for the e2e harness (see GIT_VERIFY_WRAPPER there).
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
        """The objects of argocd-config.yaml, argocd-secret given a fresh server.secretkey."""
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


# ---------------------------------------------------------------------- sockets (loopback proof)

def non_loopback(report: list[tuple[str, str, str, str]], controller_metrics_port: int | None) -> list[str]:
    """Sockets of a :func:`~doxops.cluster.cluster.sockets` report touching anything but 127.0.0.0/8 or ::1,
    except the one allowed: the application controller's metrics listener (every interface, at its port)."""

    def metrics_listener(entry: tuple[str, str, str, str]) -> bool:
        name, protocol, state, pair = entry
        local = pair.split(" -> ")[0]
        return bool(name == CONTROLLER and protocol == "tcp" and state == "LISTEN" and controller_metrics_port
                    and local in (f"0.0.0.0:{controller_metrics_port}", f"[::]:{controller_metrics_port}"))

    return non_loopback_sockets(report, allowed=metrics_listener)


class SocketSampler:
    """Samples the sockets of some processes every ``interval`` seconds while a run goes on."""

    def __init__(self, processes: Callable[[], list[Process]], controller_metrics_port: int,
                 interval: float = 1.0) -> None:
        self.processes, self.port, self.interval = processes, controller_metrics_port, interval
        self.samples = 0
        self.seen: set[str] = set()
        self.bad: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dox-argocd-sockets")

    def _loop(self) -> None:
        while not self._stop.is_set():
            report = sockets([p for p in self.processes() if p.alive])
            self.samples += 1
            self.seen.update(f"{n}: {proto} {state}" for n, proto, state, _ in report)
            self.bad.update(non_loopback(report, self.port))
            self._stop.wait(self.interval)

    def __enter__(self) -> "SocketSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# ---------------------------------------------------------------------- the local remote


def point_settings(text: str, repo_url: str, server: str) -> str:
    """The settings file's text with ``spec.repoURL`` and ``spec.destination.server`` replaced (comments kept)."""
    new, count = re.subn(r"(?m)^(\s+repoURL:\s*)\S.*$", lambda m: m.group(1) + repo_url, text)
    new, count2 = re.subn(r"(?m)^(\s+server:\s*)\S.*$", lambda m: m.group(1) + server, new)
    data = yaml.safe_load(new)
    if count != 1 or count2 != 1 or data["spec"]["repoURL"] != repo_url or \
            data["spec"]["destination"]["server"] != server:
        raise ToolError("the environment's argocd/settings.yaml does not have one spec.repoURL and one "
                        "spec.destination.server line; the Argo CD e2e cannot point it at the local remote")
    return new


def set_value(text: str, top: str, key: str, value) -> str:
    """A values file's text with ``top.key`` set to ``value`` (a two-level key), comments kept."""
    scalar = yaml.safe_dump(value, default_flow_style=True).splitlines()[0]
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if re.match(rf"^{re.escape(top)}:\s*(#.*)?$", line)), None)
    if header is None:
        if any(re.match(rf"^{re.escape(top)}:", line) for line in lines):
            raise ToolError(f"values: `{top}:` is written inline; the e2e edits block mappings only")
        out = text + ("" if text.endswith("\n") or not text else "\n") + f"{top}:\n  {key}: {scalar}\n"
    else:
        end = next((i for i in range(header + 1, len(lines)) if re.match(r"^[^\s#]", lines[i])), len(lines))
        children = [i for i in range(header + 1, end) if re.match(r"^\s+[^\s#]", lines[i])]
        indent = re.match(r"^(\s+)", lines[children[0]]).group(1) if children else "  "
        found = next((i for i in children if re.match(rf"^{indent}{re.escape(key)}:", lines[i])), None)
        line = f"{indent}{key}: {scalar}\n"
        if found is None:
            lines.insert(header + 1, line)
        else:
            lines[found] = line
        out = "".join(lines)
    if (yaml.safe_load(out) or {}).get(top, {}).get(key) != value:
        raise ToolError(f"values: could not set {top}.{key} to {value!r}")
    return out


def _leaf_differences(old, new, path: str = "") -> list[tuple[str, object, object]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _leaf_differences(old.get(key), new.get(key), f"{path}.{key}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _leaf_differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [(path, old, new)]


def meaning_differences(committed: Path, pointed: Path, allowed: set[tuple[str, str]]) -> list[str]:
    """How ``pointed`` (a render with the settings pointed elsewhere) differs from ``committed`` in more than
    the ``allowed`` value replacements ``(old, new)``: workloads must be identical bytes."""
    problems = []
    files = {str(p.relative_to(committed)) for p in committed.rglob("*.yaml")} | \
        {str(p.relative_to(pointed)) for p in pointed.rglob("*.yaml")}
    for rel in sorted(files):
        a, b = committed / rel, pointed / rel
        if not a.exists() or not b.exists():
            problems.append(f"{rel}: only in {'the pointed render' if b.exists() else 'rendered/'}")
        elif rel.startswith("workloads/"):
            if a.read_bytes() != b.read_bytes():
                problems.append(f"{rel}: differs from a fresh render (is rendered/ stale? run ./dox render)")
        else:
            for where, old, new in _leaf_differences(yaml.safe_load(a.read_text()), yaml.safe_load(b.read_text())):
                if (old, new) not in allowed:
                    problems.append(f"{rel}{where}: {old!r} -> {new!r}")
    return problems


class GitRemote:
    """A bare repository on disk (the remote Argo CD reads) and the working copy pull requests are made in."""

    def __init__(self, directory: Path, env: Environment, progress: Progress = print) -> None:
        self.directory = Path(directory)
        self.env = env
        self.bare = self.directory / "remote.git"
        self.work = self.directory / "work"
        self.home = self.directory / "home"
        self.progress = progress
        self.git_path = git_binary()

    @property
    def url(self) -> str:
        return "file://" + str(self.bare)

    @property
    def settings_file(self) -> Path:
        return self.work / "environments" / self.env.name / "argocd" / "settings.yaml"

    @property
    def rendered(self) -> Path:
        return self.work / "rendered" / self.env.name

    def _git_env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8",
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", **GIT_IDENTITY}

    def git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run([self.git_path, *args], cwd=cwd or self.work, env=self._git_env(),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise ToolError(f"git {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[:400]}")
        return proc.stdout.strip()

    def dox(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
        """``./dox ARGS`` run inside the working copy (its own tasks and pipeline), as a user would."""
        environ = {k: v for k, v in os.environ.items() if k not in ("DOX_ENV", "KUBECONFIG", "PYTHONPATH")}
        environ.update({"PYTHONPATH": str(self.work), **(env or {})})
        proc = subprocess.run([sys.executable, "-m", "doxops", *args], cwd=self.work, env=environ,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise ToolError(f"./dox {' '.join(args)} (in the scratch copy) failed with exit {proc.returncode}:\n"
                            f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
        return proc.stdout + proc.stderr

    def render(self) -> None:
        self.dox("render", "--env", self.env.name)

    def head(self) -> str:
        return self.git("rev-parse", "refs/heads/main", cwd=self.bare)

    def create(self) -> tuple[str, str]:
        """The copy committed and pushed, then the settings pointed here in a second commit.

        Returns ``(first commit, head)``."""
        self.home.mkdir(parents=True, exist_ok=True)
        copy_working_tree(self.work)
        source = "unknown"
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            source = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, timeout=10).stdout.strip() or "unknown"
        self.git("init", "-q", "-b", "main", str(self.work), cwd=self.directory)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"dox-asdlc-gitops working tree of {source}")
        first = self.git("rev-parse", "HEAD")
        self.git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=self.directory)
        self.git("remote", "add", "origin", self.url)
        self.git("push", "-q", "origin", "main")
        self.settings_file.write_text(point_settings(self.settings_file.read_text(), self.url, IN_CLUSTER))
        self.render()
        return first, self.commit(f"{self.env.name}: Argo CD reads the local remote and deploys in-cluster")

    def commit(self, message: str) -> str:
        """Commit everything changed in the working copy and push it to main: a merged pull request."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "main")
        return self.head()

    def changed_files(self) -> list[str]:
        return [line[3:] for line in self.git("status", "--porcelain").splitlines()]


# ---------------------------------------------------------------------- the scenarios


def _resource_path(doc: dict, namespace: str) -> str:
    """The API path of a rendered object (enough for the kinds rendered here)."""
    api_version, kind = doc["apiVersion"], doc["kind"]
    plural = kind.lower()
    plural = plural[:-1] + "ies" if plural.endswith("y") else plural + ("es" if plural.endswith("s") else "s")
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    ns = doc["metadata"].get("namespace", namespace)
    return f"{base}/namespaces/{ns}/{plural}/{doc['metadata']['name']}" if kind != "Namespace" else \
        f"{base}/{plural}/{doc['metadata']['name']}"


def _short(revision: str | None) -> str:
    return (revision or "none")[:7]


class ArgoScenario(Scenario):
    """The Argo CD scenarios of one environment on one cluster with Argo CD."""

    def __init__(self, env: Environment, cluster: Cluster, remote: GitRemote, argocd: ArgoCD, report: EnvReport,
                 progress: Progress) -> None:
        super().__init__(env, cluster, remote.rendered, report, progress)
        self.remote, self.argocd = remote, argocd
        self.app_names = [d["metadata"]["name"] for d in self.argocd_docs if d.get("kind") == "Application"]
        self.child = next(d["metadata"]["name"] for d in self.argocd_docs if d.get("kind") == "Application"
                          and d["spec"]["destination"].get("namespace") == env.namespace)
        self.head = ""

    # --------------------------------------------------------------- helpers

    def reload(self) -> None:
        self.docs = [d for _, d in _load_docs(self.manifests / "workloads")]

    def app(self, name: str) -> dict:
        return self.api.get(f"{APPLICATIONS}/{name}")

    @staticmethod
    def state(app: dict) -> tuple[str, str, str]:
        status = app.get("status") or {}
        return ((status.get("sync") or {}).get("status", "Unknown"), (status.get("health") or {}).get("status",
                "Unknown"), (status.get("sync") or {}).get("revision") or "")

    def summary(self) -> str:
        parts = []
        for name in self.app_names:
            app = self.api.get_or_none(f"{APPLICATIONS}/{name}")
            if app is None:
                parts.append(f"{name}: absent")
                continue
            sync, health, revision = self.state(app)
            status = app.get("status") or {}
            op = status.get("operationState") or {}
            conditions = "; ".join(f"{c.get('type')}: {c.get('message', '')[:200]}"
                                   for c in status.get("conditions") or [])
            off = [f"{r.get('kind')}/{r.get('name')}={r.get('status')}" for r in status.get("resources") or []
                   if r.get("status") != "Synced"]
            parts.append(f"{name}: {sync}/{health} at {_short(revision)}, operation {op.get('phase')} "
                         f"{(op.get('message') or '')[:200]!r}" + (f", conditions: {conditions}" if conditions else "")
                         + (f", not synced: {', '.join(off[:8])}" if off else ""))
        return " | ".join(parts)

    def synced_at(self, revision: str, *, operation: bool = False, names: list[str] | None = None) -> bool:
        for name in names or self.app_names:
            app = self.app(name)
            sync, health, current = self.state(app)
            if (sync, health, current) != ("Synced", "Healthy", revision):
                return False
            if operation and name == self.child:
                op = (app.get("status") or {}).get("operationState") or {}
                if op.get("phase") != "Succeeded" or (op.get("syncResult") or {}).get("revision") != revision:
                    return False
        return True

    def wait_apps(self, what: str, check, timeout: float, interval: float = 0.5):
        try:
            return self.api.wait_for(what, check, timeout, interval)
        except TimeoutError as exc:
            self.check(what, False, f"{exc}; {self.summary()}")
            raise ScenarioFailed(what) from None

    def replica_sets(self, deployment: dict) -> dict[str, dict]:
        selector = _selector(deployment["spec"]["selector"]["matchLabels"])
        return {rs["metadata"]["name"]: rs for rs in self.api.items(f"{self.apps}/replicasets", labelSelector=selector)}

    def config_consumers(self, configmap: str) -> list[dict]:
        """Deployments whose pods read ``configmap`` (envFrom, env or a volume)."""
        out = []
        for deployment in self.docs_of("Deployment"):
            spec = deployment["spec"]["template"]["spec"]
            names = {e["configMapRef"]["name"] for c in spec["containers"] for e in c.get("envFrom") or []
                     if "configMapRef" in e}
            names |= {(e.get("valueFrom") or {}).get("configMapKeyRef", {}).get("name") for c in spec["containers"]
                      for e in c.get("env") or []}
            names |= {v["configMap"]["name"] for v in spec.get("volumes") or [] if "configMap" in v}
            if configmap in names:
                out.append(deployment)
        return out

    def rendered_checksum(self, deployment_name: str) -> str | None:
        return (self.doc("Deployment", deployment_name)["spec"]["template"]["metadata"].get("annotations") or {}) \
            .get("checksum/config")

    # --------------------------------------------------------------- set-up

    def apply_config(self, objects: list[dict]) -> None:
        """Argo CD's configuration objects, server-side (argocd-secret's generated key travels on stdin)."""
        stream = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        proc = self.cluster.kubectl("apply", "--server-side", "--field-manager=dox-e2e", "-f", "-", input=stream,
                                    check=False)
        if proc.returncode != 0:
            raise ArgoCDError(f"applying Argo CD's configuration failed: {proc.stderr.strip()}")

    def start_argocd(self) -> None:
        self.argocd.start(self.apply_config)
        kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in self.argocd.config_objects())
        self.check("Argo CD started: redis, repo-server, application controller on 127.0.0.1", True,
                   f"config {', '.join(kinds)}; version {self._version()}")

    def _version(self) -> str:
        match = re.search(r'version="?(v[^"\s]+)', self.argocd.log_text())
        return match.group(1) if match else "?"

    def provide_secrets_as_user(self, simulators: Simulators) -> None:
        """prod: the simulated External Secrets store; minikube: the real ``./dox minikube-secrets`` task."""
        if self.docs_of("ExternalSecret"):
            self.provide_secrets(simulators)
            return
        generated = {"DOX_GIT_USERNAME": "e2e-" + secrets.token_hex(4), "DOX_GIT_TOKEN": secrets.token_urlsafe(24),
                     "ANTHROPIC_API_KEY": secrets.token_urlsafe(32), "DOX_REDIS_PASSWORD": secrets.token_urlsafe(24)}
        self.remote.dox("minikube-secrets", "--env", self.env.name, env={**self._kube_env(), **generated})
        names = [s["metadata"]["name"] for s in self.api.items(f"{self.ns}/secrets")]
        self.check("Secrets created by `./dox minikube-secrets` (generated values, never printed)",
                   len(names) >= len(operate.MINIKUBE_SECRETS), ", ".join(sorted(names)))

    def _kube_env(self) -> dict[str, str]:
        home = self.remote.directory / "kube-home"
        home.mkdir(parents=True, exist_ok=True)
        return {"KUBECONFIG": str(self.cluster.kubeconfig_path), "DOX_KUBECTL": self.cluster.binary("kubectl"),
                "HOME": str(home)}

    def bootstrap(self) -> None:
        """``./dox argocd-bootstrap --env ENV``, run in the copy against this cluster: the user's one step."""
        output = self.remote.dox("argocd-bootstrap", "--env", self.env.name, env=self._kube_env())
        applied = re.findall(r"applied (\S+)", output)
        self.check(f"`./dox argocd-bootstrap --env {self.env.name}` applied the bootstrap project and root "
                   "Application", len(applied) == 2, ", ".join(applied))

    # --------------------------------------------------------------- 1. the first sync

    def first_sync(self) -> None:
        started = time.monotonic()
        self.wait_apps(f"every Application Synced and Healthy at the remote's head {_short(self.head)}",
                       lambda: self.synced_at(self.head, operation=True), 240, interval=1.0)
        seconds = time.monotonic() - started
        app = self.app(self.child)
        resources = (app.get("status") or {}).get("resources") or []
        self.check(f"first sync: {', '.join(self.app_names)} Synced and Healthy at {_short(self.head)}", True,
                   f"{seconds:.0f} s after the bootstrap; {self.child} manages {len(resources)} resources")
        wanted = {}
        for kind in ("Deployment", "StatefulSet"):
            for doc in self.docs_of(kind):
                replicas = doc["spec"].get("replicas")
                if replicas is None:  # an HPA owns it (at its minimum here), else the API server's default
                    hpa = next((h for h in self.docs_of("HorizontalPodAutoscaler")
                                if h["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]), None)
                    replicas = hpa["spec"].get("minReplicas", 1) if hpa else 1
                wanted[doc["metadata"]["name"]] = (_selector(doc["spec"]["selector"]["matchLabels"]), replicas)

        def running() -> dict[str, int] | None:
            counts = {name: sum(1 for p in self.running(sel) if p["spec"].get("nodeName") == NODE_NAME)
                      for name, (sel, _) in wanted.items()}
            return counts if all(counts[n] == r for n, (_, r) in wanted.items()) else None

        counts = self.wait("workloads Running on the simulated node", running, 60)
        self.check(f"workloads Running on simulated node {NODE_NAME}", True,
                   ", ".join(f"{n} {c}" for n, c in sorted(counts.items())))

    # --------------------------------------------------------------- 2. a merged pull request

    def pull_request(self) -> None:
        pool = self.role("autoscaled-pool")
        singleton = self.role("singleton")
        hpa_doc = next(h for h in self.docs_of("HorizontalPodAutoscaler")
                       if h["spec"]["scaleTargetRef"]["name"] == pool["metadata"]["name"])
        hpa_path = _resource_path(hpa_doc, self.namespace)
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
        self.observe(f"pull request {_short(self.head)} merged: values.yaml changed, re-rendered: "
                     f"{', '.join(Path(f).name for f in changed)}")
        self.reload()
        new_checksums = {n: self.rendered_checksum(n) for n in consumers}
        self.require(f"the render changed the checksum annotation of {', '.join(consumers)}",
                     bool(consumers) and all(old_checksums[n] != new_checksums[n] for n in consumers))

        self.wait_apps(f"{self.child} synced to the merged commit {_short(self.head)}",
                       lambda: self.synced_at(self.head, operation=True), 120)
        seconds = time.monotonic() - pushed
        app = self.app(self.child)
        op = app["status"]["operationState"]
        history = app["status"].get("history") or []
        self.check(f"sync revision became the merged commit {_short(self.head)}",
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
            selector = _selector(deployment["spec"]["selector"]["matchLabels"])
            want = deployment["spec"].get("replicas", 1)

            def rolled(name=name, selector=selector, want=want, deployment=deployment):
                live = self.api.get(f"{self.apps}/deployments/{name}")
                status = live.get("status") or {}
                if status.get("observedGeneration", 0) < live["metadata"]["generation"] or \
                        status.get("updatedReplicas") != want or status.get("availableReplicas") != want:
                    return None
                pods = self.pods(selector)
                if len(pods) != want or not all(_is_running(p) for p in pods):
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
        before = {str(p.relative_to(self.manifests)): d for p, d in _load_docs(self.manifests / "workloads")}
        template.unlink()
        self.remote.render()
        after = {str(p.relative_to(self.manifests)) for p in (self.manifests / "workloads").rglob("*.yaml")}
        removed = {rel: doc for rel, doc in before.items() if rel not in after}
        changed = [f for f in self.remote.changed_files() if f.startswith("rendered/")]
        self.require(f"removing {Path(PRUNED_TEMPLATE).name} from the chart removes rendered objects and changes "
                     "nothing else", bool(removed) and len(changed) == len(removed),
                     f"removed {sorted(removed)}, changed {changed}")
        names = [f"{d['kind']}/{d['metadata']['name']}" for d in removed.values()]
        paths = [_resource_path(d, self.namespace) for d in removed.values()]
        self.head = self.remote.commit(f"{self.env.name}: remove {PRUNED_TEMPLATE}")
        pushed = time.monotonic()
        self.reload()

        if declared:
            def pruned() -> bool:
                return self.synced_at(self.head, operation=True) and not any(self.api.exists(p) for p in paths)

            self.wait_apps(f"prune: true: {', '.join(names)} deleted by the sync of {_short(self.head)}", pruned, 120)
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

        self.wait_apps(f"an operator's sync with prune deletes {', '.join(names)}", operator_pruned, 90)
        self.check(f"prune: false: an operator's sync with prune (initiated by {OPERATOR}) deleted "
                   f"{', '.join(names)}; Synced again", True)

    # --------------------------------------------------------------- 4. self-heal

    def self_heal(self) -> None:
        singleton = self.role("singleton")
        name = singleton["metadata"]["name"]
        path = f"{self.apps}/deployments/{name}"
        selector = _selector(singleton["spec"]["selector"]["matchLabels"])
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
            return live["spec"].get("replicas") == 1 and len(pods) == 1 and _is_running(pods[0]) and \
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
                    problems.append(f"{time.monotonic() - began:.0f}s {name}: {sync}/{health} at {_short(revision)}"
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
        processes = [p for p in self.cluster.processes + self.argocd.processes if p.alive]
        now = sockets(processes)
        bad = non_loopback(now, self.argocd.ports.controller_metrics)
        allowed = [f"{n}: {proto} {state} {pair}" for n, proto, state, pair in now
                   if n == CONTROLLER and state == "LISTEN" and not is_loopback_endpoint(pair.split(" -> ")[0])]
        names = {n for n, *_ in now}
        self.check("loopback only: every TCP/UDP socket of the control plane and Argo CD (now and sampled every "
                   "second), but the controller's metrics listener",
                   not bad and not sampler.bad and {REDIS, REPO_SERVER, CONTROLLER} <= names and sampler.samples > 0,
                   f"{len(now)} sockets of {len(processes)} processes; {sampler.samples} samples; non-loopback: "
                   f"{sorted(set(bad) | sampler.bad) or 'none'}; allowed: {allowed or 'none'}")
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


# ---------------------------------------------------------------------- the runner


class ArgoReport(EnvReport):
    def text(self) -> str:
        return "e2e --argocd" + super().text()[len("e2e"):]


def run_env(env: Environment, paths: dict[str, Path], *, keep: bool = False, progress: Progress = print) -> EnvReport:
    """One environment, from the local remote to teardown; never raises for a failed check (the report says it)."""
    report = ArgoReport(env.name)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f"dox-argocd-{env.name}-"))
    say = lambda message: progress(f"[{env.name} argocd] {message}")  # noqa: E731
    cluster = Cluster(scratch / "cluster", binaries=paths, keep=keep, progress=say, name=f"argocd-{env.name}")
    argocd = ArgoCD(scratch / "argocd", cluster.kubeconfig_path, str(paths["argocd"]), redis_server(),
                    taken=set(vars(cluster.ports).values()), progress=say)
    stopped = False
    try:
        remote = GitRemote(scratch / "git", env, say)
        original = yaml.safe_load((REPO_ROOT / "environments" / env.name / "argocd" / "settings.yaml").read_text())
        first, head = remote.create()
        problems = meaning_differences(REPO_ROOT / "rendered" / env.name, remote.rendered, {
            (original["spec"]["repoURL"], remote.url), (original["spec"]["destination"]["server"], IN_CLUSTER)})
        report.checks.append(Check(
            f"local remote {remote.url}: {_short(first)} (the repository) + {_short(head)} (settings.yaml pointed "
            f"at it and at {IN_CLUSTER}); rendered/{env.name} keeps its meaning", not problems,
            "; ".join(problems[:5]) or "workloads byte-identical, Argo CD objects differ in repoURL and destination "
            "only"))
        with cluster:
            scenario = ArgoScenario(env, cluster, remote, argocd, report, say)
            scenario.head = head
            try:
                with Simulators(cluster.api) as simulators:
                    def provide_secrets() -> None:
                        scenario.provide_secrets_as_user(simulators)

                    setup = (scenario.guard, scenario.provide_storage, scenario.apply_crds_and_namespaces,
                             provide_secrets, scenario.start_argocd, scenario.bootstrap)
                    if all(_attempt(report, step) for step in setup):
                        with SocketSampler(lambda: cluster.processes + argocd.processes,
                                           argocd.ports.controller_metrics) as sampler:
                            if _attempt(report, scenario.first_sync):
                                for step in (scenario.pull_request, scenario.prune, scenario.self_heal,
                                             scenario.steady_state):
                                    if not _attempt(report, step):
                                        break

                            def loopback() -> None:
                                scenario.loopback_argocd(sampler)

                            _attempt(report, loopback)
                    if simulators.errors:
                        report.checks.append(Check("simulators ran without errors", False,
                                                   "; ".join(simulators.errors[:3])))
            finally:
                if not report.ok:
                    report.observations.append("Argo CD state: " + _safe(scenario.summary))
                    report.observations.append("log tails:\n" + "\n\n".join(
                        p.describe() for p in argocd.processes + cluster.processes))
                    cluster.mark_failed()
                argocd.stop()
        stopped = True
    except Exception as exc:  # noqa: BLE001 - start-up errors carry their log tails in the message
        cluster.mark_failed()
        report.checks.append(Check("the run itself", False, f"{type(exc).__name__}: {exc}"))
    finally:
        argocd.stop()
        if not stopped:
            cluster.stop()
        every = argocd.processes + cluster.processes
        alive = [f"{p.name} ({p.pid})" for p in every if p.alive]
        ports = [port for port in vars(argocd.ports).values() if _listening(port)]
        report.checks.append(Check(f"teardown: every process stopped ({len(every)}: "
                                   f"{', '.join(p.name for p in every)}), every Argo CD port closed",
                                   bool(every) and not alive and not ports,
                                   f"alive: {alive or 'none'}; open ports: {ports or 'none'}"))
        report.seconds = time.monotonic() - started
        if report.ok and not keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            report.workdir = str(scratch)
    return report


def _safe(function: Callable[[], str]) -> str:
    try:
        return function()
    except Exception as exc:  # noqa: BLE001 - a summary for a failure report
        return f"(unavailable: {type(exc).__name__}: {exc})"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def preflight() -> None:
    """What the run needs besides the pinned binaries: fail at once, with the package to install."""
    redis_server()
    git_binary()


def run_reports(env_names: list[str] | None, keep: bool = False, progress: Progress = print,
                parallel: bool = True, paths: dict[str, Path] | None = None) -> list[EnvReport]:
    """Run each environment (all when ``env_names`` is empty) with Argo CD; never raises for checks."""
    preflight()
    return e2e_mod.run_each(run_env, env_names, keep=keep, progress=progress, parallel=parallel, paths=paths)


def run_argocd_e2e(env_names: list[str] | None, keep: bool = False, progress: Progress = print,
                   parallel: bool = True) -> list[EnvReport]:
    """Each environment synced by the real Argo CD from a local remote into its own control plane, checked.

    Prints each report; raises :class:`~doxops.errors.Findings` (exit 1) naming every failed check when
    an environment fails. ``keep`` keeps every work directory (git remote and copy, logs, kubeconfig).
    """
    return e2e_mod.conclude("e2e --argocd", run_reports(env_names, keep=keep, progress=progress,
                                                        parallel=parallel), progress)
