"""The rule registry: id -> module. Add a rule by adding its module here.

``api-server`` and ``stored-as-written`` are the API-server stage's rules (their module has ``STAGE``): the
stage reports their findings; registering them lets policy.yaml set their levels and exemptions name them."""

from __future__ import annotations

from types import ModuleType

from . import (
    api_server,
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
    stored_as_written,
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
        api_server,
        stored_as_written,
    )
}
