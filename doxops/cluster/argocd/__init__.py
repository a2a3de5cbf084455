"""Argo CD in the loop: a merge to a local git remote, synced into the local control plane by the real Argo CD.

The package: :mod:`.install` (Argo CD's processes and Redis), :mod:`.remote` (the local git remote and
the pull requests), :mod:`.harness` (the Applications' state, the set-up as a user does it),
:mod:`.scenarios` (the scenarios below) and :mod:`.run` (one environment's run and its teardown). Its
public names are re-exported here.

For each environment, :func:`run_env` builds what a platform engineer has, on this machine only:

1. **A remote.** A scratch copy of this repository (:func:`doxops.paths.copy_working_tree`) becomes a
   git working copy whose ``origin`` is a bare repository on disk, reached as ``file://`` (Argo CD's
   repoURL). The environment's one settings file, ``environments/<env>/argocd/settings.yaml``, is
   pointed at that remote and at the cluster Argo CD runs in (``https://kubernetes.default.svc``),
   ``./dox render`` is run in the copy and the change is committed and pushed, as a pull request would
   be. A check proves the committed ``rendered/<env>`` keeps its meaning: the workloads are byte for
   byte the repository's, the Argo CD objects differ in the repository URL and destination only.
2. **A cluster with Argo CD.** The control plane of :mod:`doxops.cluster.cluster` (with the same
   simulators), the CRDs, Secrets and volumes as :class:`doxops.cluster.harness.Harness` provides them, then :class:`ArgoCD`: Redis (Debian's
   ``redis-server``), ``argocd-repo-server`` and ``argocd-application-controller`` (one pinned binary,
   the role picked by ``ARGOCD_BINARY_NAME``), with the configuration objects of
   ``config.yaml``. The environment is bootstrapped with the real task,
   ``./dox argocd-bootstrap --env <env>``, run inside the copy against this cluster.
3. **The scenarios** (:class:`ArgoScenario`), each ending in named checks (a milestone after a wait is an
   observation): the first sync (every Application Synced and Healthy at the remote's head, the workloads
   Running on the simulated node);
   a merged pull request (``workers.maxReplicas`` and the orchestrator's ``LOG_LEVEL`` changed through
   values and re-rendered: the sync revision becomes the new commit, the HPA changes, the ConfigMap's
   consumer rolls to a new ReplicaSet and nothing else rolls); prune (a chart template removed: gone
   with ``prune: true``, still there and reported ``requiresPruning`` with ``prune: false`` until an
   operator's sync with prune); self-heal (the orchestrator scaled to 2 by hand returns to 1); steady
   state (Synced and Healthy through several reconciliations, no sync started: no perpetual diff);
   loopback (every socket of every process, in every state, sampled from the cluster's start); teardown (every process stopped, every port closed).

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

from .install import (CONFIG_FILE, CONTROLLER, REDIS, REPO_SERVER, ArgoCD, ArgoCDError, ArgoPorts, git_binary,
                      metrics_listener, non_loopback, redis_server)
from .remote import IN_CLUSTER, GitRemote, meaning_differences, point_settings, set_value
from .run import preflight, run_argocd_e2e, run_env, run_reports
from .scenarios import LOG_LEVEL_VALUE, MAX_REPLICAS_VALUE, PRUNED_TEMPLATE, ArgoScenario

__all__ = ["CONFIG_FILE", "CONTROLLER", "IN_CLUSTER", "LOG_LEVEL_VALUE", "MAX_REPLICAS_VALUE", "PRUNED_TEMPLATE",
           "REDIS", "REPO_SERVER", "ArgoCD", "ArgoCDError", "ArgoPorts", "ArgoScenario", "GitRemote", "git_binary",
           "meaning_differences", "metrics_listener", "non_loopback", "point_settings", "preflight", "redis_server",
           "run_argocd_e2e", "run_env", "run_reports", "set_value"]
