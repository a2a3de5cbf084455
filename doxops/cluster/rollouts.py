"""The two scenarios that watch controllers act over time: the orchestrator's rollouts, the workers' autoscaling.

:func:`orchestrator`: one pod with the Git credentials mounted read-only; an image change under
the rendered strategy (Recreate) never shows two pods at once, proved from a
:class:`~doxops.cluster.watch.PodWatch` timeline that must show the old pod gone and the new one
created; a deleted pod's replacement is observed; and the same watch must see two pods under a
RollingUpdate variant (the test of the test). :func:`workers`: the HPA holds the pool at its
minimum, scales it to its maximum under high simulated CPU, caps it there, and brings it back
after the stabilisation window. Every number comes from the rendered objects.
"""

from __future__ import annotations

import time

from .api import MERGE, STRATEGIC
from .cluster import CPU_ANNOTATION, NODE_NAME
from .harness import Harness, cpu_millis, is_running, label_selector
from .values import environment_values, hpa_bounds
from .watch import PodWatch


def orchestrator(h: Harness) -> None:
    singleton = h.role("singleton")
    name = singleton["metadata"]["name"]
    selector = label_selector(singleton["spec"]["selector"]["matchLabels"])
    path = f"{h.apps}/deployments/{name}"

    def settled(image: str | None = None):
        deployment = h.api.get(path)
        status = deployment.get("status", {})
        pods = h.pods(selector)
        if status.get("observedGeneration", 0) < deployment["metadata"]["generation"]:
            return None
        if status.get("updatedReplicas") != 1 or status.get("availableReplicas") != 1 or len(pods) != 1:
            return None
        if not is_running(pods[0]):
            return None
        if image and pods[0]["spec"]["containers"][0]["image"] != image:
            return None
        return pods[0]

    pod = h.wait(f"{name}: exactly 1 pod Running", settled, 60)
    h.observe(f"{name}: exactly 1 pod Running ({pod['metadata']['name']})")

    mount_path, secret_name = git_credentials_expectation(environment_values(h.env))
    container = pod["spec"]["containers"][0]
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
    mount = mounts.get(mount_path)
    volume = next((v for v in pod["spec"].get("volumes") or [] if mount and v["name"] == mount["name"]), {})
    h.check(f"{name}: Git credentials Secret {secret_name} mounted read-only at {mount_path}",
               bool(mount) and mount.get("readOnly") is True
               and (volume.get("secret") or {}).get("secretName") == secret_name,
               f"mounts {sorted(mounts)}")
    others = [d["metadata"]["name"] for d in h.docs_of("Deployment") + h.docs_of("StatefulSet")
              if d["metadata"]["name"] != name and any(
                  (v.get("secret") or {}).get("secretName") == secret_name
                  for v in d["spec"]["template"]["spec"].get("volumes") or [])]
    h.check(f"only {name} mounts {secret_name}", not others, ", ".join(others))

    image = container["image"]
    repository = image.rsplit(":", 1)[0]

    # 1. An image change under the rendered strategy: never two pods at once, the old one gone, a new one made.
    strategy = h.api.get(path)["spec"]["strategy"]["type"]
    watch = PodWatch(h.api, h.namespace, selector)
    new_image = f"{repository}:e2e-rollout-1"
    started = time.monotonic()
    h.api.patch(path, {"spec": {"template": {"spec": {"containers": [{"name": container["name"],
                                                                      "image": new_image}]}}}}, STRATEGIC)
    h.wait(f"{name}: rollout to {new_image}", lambda: settled(new_image), 90)
    ok, detail = watch.stop().never_two()
    h.check(f"{name}: image change rolled out ({strategy}) with never two pods at once",
            ok and strategy == "Recreate", f"strategy {strategy}, {time.monotonic() - started:.1f} s: {detail}")

    # 2. A pod deleted by hand: the ReplicaSet replaces it at once, the old one still terminating (observed).
    victim = settled(new_image)["metadata"]["name"]
    watch = PodWatch(h.api, h.namespace, selector)
    h.api.delete(f"{h.ns}/pods/{victim}")

    def replaced():  # one pod again, Running, and it is not the deleted one
        pod = settled(new_image)
        return pod if pod and pod["metadata"]["name"] != victim else None

    h.wait(f"{name}: replacement of a deleted pod Running", replaced, 60)
    watch.stop()
    gone = next((e.at for e in watch.timeline if e.what == "gone" and e.pod == victim), None)
    created = next((e.at for e in watch.timeline if e.what == "created"), None)
    if watch.max_present >= 2:
        span = f" for {gone - created:.1f} s" if gone is not None and created is not None else ""
        h.observe(f"{name}: deleting pod {victim}: the ReplicaSet created a replacement while it was still "
                  f"terminating, so two orchestrator pods overlapped{span} ({watch.story()}; watch {watch.ended}). "
                  "Recreate orders rollouts only; a deleted or evicted pod is replaced at once.")
    else:
        h.observe(f"{name}: deleting pod {victim}: replaced, no overlap seen ({watch.story()}; watch {watch.ended})")

    # 3. The test of the test: the same watch sees two pods under RollingUpdate with maxSurge 1.
    watch = PodWatch(h.api, h.namespace, selector)
    variant_image = f"{repository}:e2e-rollout-2"
    h.api.patch(path, {"spec": {"strategy": {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                                "template": {"spec": {"containers": [{"name": container["name"],
                                                                      "image": variant_image}]}}}}, STRATEGIC)
    h.wait(f"{name}: RollingUpdate variant rolled out", lambda: settled(variant_image), 90)
    ok, detail = watch.stop().overlap_seen()
    h.check("the rollout watch catches overlap under RollingUpdate maxSurge 1 (test of the test)", ok, detail)
    h.api.patch(path, {"spec": {"strategy": {"type": strategy, "rollingUpdate": None}}}, MERGE)


def git_credentials_expectation(values: dict) -> tuple[str, str]:
    """Where the environment's values say the Git credentials go, and the Secret's name."""
    return (values["orchestrator"]["gitCredentials"]["mountPath"],
            values["global"]["secrets"]["gitCredentials"]["name"])


def workers(h: Harness) -> None:
    pool = h.role("autoscaled-pool")
    name = pool["metadata"]["name"]
    selector = label_selector(pool["spec"]["selector"]["matchLabels"])
    hpa_doc = next(d for d in h.docs_of("HorizontalPodAutoscaler") if d["spec"]["scaleTargetRef"]["name"] == name)
    hpa_path = f"/apis/autoscaling/v2/namespaces/{h.namespace}/horizontalpodautoscalers/{hpa_doc['metadata']['name']}"
    low, high = hpa_doc["spec"]["minReplicas"], hpa_doc["spec"]["maxReplicas"]
    target = hpa_doc["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
    window = hpa_doc["spec"].get("behavior", {}).get("scaleDown", {}).get("stabilizationWindowSeconds")
    h.check(f"{name}: the Deployment sets no replica count (the HPA owns it)", "replicas" not in pool["spec"])
    wanted = hpa_bounds(environment_values(h.env))
    h.check(f"{name}: HPA {low}..{high} at {target}% CPU, as the environment's values say",
            (low, high, target) == wanted, f"values: minReplicas {wanted[0]}, maxReplicas {wanted[1]}, "
            f"targetCPUUtilization {wanted[2]}")
    deployment_path = f"{h.apps}/deployments/{name}"

    def replicas() -> int:
        return h.api.get(deployment_path)["spec"].get("replicas", 0)

    h.wait(f"{name}: HPA brings the pool to {low} Running pods",
              lambda: replicas() == low and len(h.running(selector)) == low, 60)
    rescales = [e["message"] for e in h.api.items(f"{h.ns}/events", fieldSelector=(
        f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={hpa_doc['metadata']['name']}"))
        if e.get("reason") == "SuccessfulRescale"]
    h.check(f"{name}: {low} pods, brought there by the HPA", bool(rescales), "; ".join(rescales))

    container = pool["spec"]["template"]["spec"]["containers"][0]
    request = cpu_millis(container["resources"]["requests"]["cpu"])
    metrics_path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{h.namespace}/pods"

    def set_usage(millis: int) -> None:
        h.api.patch(f"/api/v1/nodes/{NODE_NAME}",
                       {"metadata": {"annotations": {CPU_ANNOTATION + container["name"]: f"{millis}m"}}})

    # Up: simulated usage of three times the request, far above the target.
    peak, seen_limited = 0, False
    hot = request * 3
    set_usage(hot)
    started = time.monotonic()

    def at_max():
        nonlocal peak, seen_limited
        count = replicas()
        peak = max(peak, count)
        status = h.api.get(hpa_path).get("status", {})
        seen_limited = seen_limited or any(c.get("type") == "ScalingLimited" and c.get("status") == "True"
                                           and c.get("reason") == "TooManyReplicas" for c in status.get("conditions") or [])
        return count == high and len(h.running(selector)) == high

    h.wait(f"{name}: scale up to {high} under {hot}m CPU per pod ({hot * 100 // request}% of the request)",
              at_max, 150, interval=1.0)
    up_seconds = time.monotonic() - started
    usage = {m["metadata"]["name"]: c["usage"]["cpu"] for m in h.api.items(metrics_path, labelSelector=selector)
             for c in m.get("containers") or [] if c["name"] == container["name"]}
    h.check(f"{name}: metrics.k8s.io (metrics-server, scraping kwok) reports the pods' CPU",
               len(usage) >= low, f"{len(usage)} pods, e.g. {next(iter(usage.values()), None)}")
    status = h.api.get(hpa_path).get("status", {})
    utilisation = next((m["resource"]["current"].get("averageUtilization") for m in status.get("currentMetrics") or []
                        if m.get("type") == "Resource"), None)
    for _ in range(6):  # keep looking for a few seconds: the cap must hold
        time.sleep(0.5)
        at_max()
    h.check(f"{name}: CPU above {target}% scales up to {high}, capped there",
               peak == high, f"reached {high} in {up_seconds:.0f} s at {utilisation}% CPU; never above {peak}; "
               f"ScalingLimited/TooManyReplicas {'seen' if seen_limited else 'not seen'}")

    # Down: usage a tenth of the request; the HPA waits out the stabilisation window first.
    set_usage(max(1, request // 10))
    started = time.monotonic()
    h.wait(f"{name}: scale back down to {low}", lambda: replicas() == low, 150, interval=1.0)
    down_seconds = time.monotonic() - started
    h.wait(f"{name}: {low} pods left after scale-down", lambda: len(h.pods(selector)) == low, 60)
    live_window = (h.api.get(hpa_path)["spec"].get("behavior", {}).get("scaleDown", {})
                   .get("stabilizationWindowSeconds"))
    h.check(f"{name}: back down to {low} after the stabilisation window ({window} s)",
               window is not None and live_window == window and down_seconds >= window,
               f"scaled down {down_seconds:.0f} s after CPU fell to 10% (live HPA window {live_window} s)")

