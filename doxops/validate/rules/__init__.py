"""The rule registry: id -> module. Add a rule by adding its module here."""

from __future__ import annotations

from types import ModuleType

from . import (
    argocd_project,
    argocd_source,
    argocd_sync,
    autoscaled_pool,
    config_refs,
    git_credentials,
    image_tag,
    namespace,
    no_credentials,
    no_secret_data,
    pdb_eviction,
    pod_references,
    pod_security,
    probes,
    resources,
    service_address,
    service_selector,
    singleton,
)

REGISTRY: dict[str, ModuleType] = {
    module.ID: module
    for module in (
        singleton,
        autoscaled_pool,
        pdb_eviction,
        service_selector,
        service_address,
        config_refs,
        git_credentials,
        no_secret_data,
        no_credentials,
        probes,
        resources,
        pod_security,
        pod_references,
        image_tag,
        namespace,
        argocd_project,
        argocd_source,
        argocd_sync,
    )
}
