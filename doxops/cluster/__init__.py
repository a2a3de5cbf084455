"""End-to-end proof on a real control plane: the rendered environments applied to a local cluster.

* :mod:`.binaries`: the pinned kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
  etcd, kwok and metrics-server, built from Go modules into the shared tool cache;
* :mod:`.pki`: certificates and service-account keys (openssl);
* :mod:`.cluster`: the processes, on 127.0.0.1 only, with readiness waits and teardown;
* :mod:`.api`: a small stdlib client of the Kubernetes API;
* :mod:`.simulators`: stand-ins for the ingress and External Secrets controllers;
* :mod:`.e2e`: ``run_e2e(env_names)``, the acceptance scenarios of ARCHITECTURE.md.

``stages/`` holds the kwok Stage, Metric and ResourceUsage configuration of the simulated nodes.
"""
