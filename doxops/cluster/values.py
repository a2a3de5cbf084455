"""An environment's Helm values as Helm merges them: what the e2e expects is read from here, never written twice.

:func:`environment_values` layers, as ``helm template`` does for the environment's kustomization,
the subcharts' ``values.yaml`` (under their alias), the umbrella chart's ``values.yaml``, the
kustomization's ``valuesFile`` and its ``additionalValuesFiles``. The e2e reads from it the
expectations that belong to an environment (the workers' HPA bounds, the secrets an External
Secrets store holds), so a changed value changes the expectation instead of failing a literal.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from ..environments import KUSTOMIZATION, Environment


def merge(base: dict, over: dict) -> dict:
    """``over`` layered on ``base`` as Helm layers values: maps merge, anything else replaces, null deletes."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load(path: Path) -> dict:
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def chart_defaults(chart: Path) -> dict:
    """The umbrella chart's values with each dependency's own ``values.yaml`` under its alias (or name)."""
    meta = _load(chart / "Chart.yaml")
    values: dict = {}
    for dependency in meta.get("dependencies") or []:
        sub = chart / "charts" / dependency["name"]
        sub_meta = _load(sub / "Chart.yaml")
        if sub_meta.get("type") == "library":
            continue
        values[dependency.get("alias") or dependency["name"]] = _load(sub / "values.yaml")
    return merge(values, _load(chart / "values.yaml"))


def environment_values(env: Environment) -> dict:
    """The values the environment's (first) chart is rendered with, merged."""
    kustomization = _load(env.path / KUSTOMIZATION)
    chart_entry = (kustomization.get("helmCharts") or [{}])[0]
    chart_home = env.path / ((kustomization.get("helmGlobals") or {}).get("chartHome") or "charts")
    values = chart_defaults(chart_home / chart_entry.get("name", ""))
    files = ([chart_entry["valuesFile"]] if chart_entry.get("valuesFile") else []) + \
        list(chart_entry.get("additionalValuesFiles") or [])
    for name in files:
        values = merge(values, _load(env.path / name))
    values = merge(values, chart_entry.get("valuesInline") or {})
    return values


def hpa_bounds(values: dict, key: str = "workers") -> tuple[int, int, int]:
    """``(minReplicas, maxReplicas, targetCPUUtilization)`` of the autoscaled pool ``key`` in ``values``."""
    pool = values.get(key) or {}
    return int(pool["minReplicas"]), int(pool["maxReplicas"]), int(pool["targetCPUUtilization"])
