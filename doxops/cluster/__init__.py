"""End-to-end proof on a real control plane: the rendered environments applied to a local cluster.

The control plane (the public names of :mod:`.cluster`, :mod:`.process`, :mod:`.pki` and :mod:`.api`
are what other stages build on):

* :mod:`.binaries`: the pinned kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
  etcd, kwok and metrics-server, built from Go modules into the shared tool cache;
* :mod:`.pki`: certificates and service-account keys (openssl);
* :mod:`.cluster`: the processes, on 127.0.0.1 only, with readiness waits and teardown;
  :mod:`.manifests`: the kubeconfig, kwok configuration and objects it writes itself;
* :mod:`.process`: child processes started with a log, stopped by pid, never leaked;
* :mod:`.api`: a small stdlib client of the Kubernetes API;
* :mod:`.simulators`: stand-ins for the ingress and External Secrets controllers.

What both e2e runs share:

* :mod:`.report`: ``Check`` (an assertion), ``EnvReport`` (checks and observations), ``conclude``;
* :mod:`.harness`: ``Harness``, an environment's manifests on a cluster: report helpers, set-up phases;
* :mod:`.watch`: ``PodWatch``, a pod timeline that says why it ended, and the verdicts read from it;
* :mod:`.sockets`: the loopback proof: every socket in every state, sampled during the whole run;
* :mod:`.values`: an environment's merged Helm values, where expectations come from.

The runs:

* :mod:`.e2e`: ``run_e2e(env_names)``, with :mod:`.scenarios` and :mod:`.rollouts`, the acceptance
  scenarios of ARCHITECTURE.md;
* :mod:`.argocd`: ``run_argocd_e2e(env_names)``, the real Argo CD syncing from a local git remote.

``stages/`` holds the kwok Stage, Metric and ResourceUsage configuration of the simulated nodes.
"""
