"""image-tag: every image is pinned, never ``latest``.

Subjects: the image of every container and init container. What counts as
pinned is conf ``require``:

* ``tag`` (default): a tag other than ``latest``, or a digest;
* ``version``: a tag that reads as a version, with at least major and minor
  (``1.2.3``, ``v1.2``, ``7.2.5-alpine``; not ``16`` or ``stable``, which
  move), or a digest;
* ``digest``: a digest, ``@sha256:<64 hex digits>``.

An image without tag and digest runs whatever ``latest`` is at pull time. A
digest pins the image whatever its tag says.

Passing::

    image: registry.example.com/cache:7.2.5-alpine
    image: registry.example.com/app:1.4.0@sha256:<64 hex digits>

Failing::

    image: cache
    image: registry.example.com:5000/app:latest
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ...errors import UsageError
from ..engine import Context, Finding
from ..options import defaults
from ._common import container_name

ID = "image-tag"
LEVEL = "error"


@dataclass(frozen=True)
class Options:
    require: Literal["tag", "version", "digest"] = "tag"  #: what counts as pinned


CONF = defaults(Options)

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
VERSION = re.compile(r"^v?\d+(\.\d+)+([-+_][0-9A-Za-z][0-9A-Za-z.+_-]*)?$")
REQUIRE = ("tag", "version", "digest")


def split(image: str) -> tuple[str, str]:
    """(tag, digest) of an image reference; either may be empty."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]  # a registry port (host:5000/...) is not a tag
    tag = last.split(":", 1)[1] if ":" in last else ""
    return tag, digest


def _problem(image: str, require: str) -> str | None:
    tag, digest = split(image)
    pinned = bool(DIGEST.search(image))
    if digest and not pinned:
        return f"has the malformed digest {digest}; use @sha256:<64 lowercase hex digits>"
    if require == "digest":
        return None if pinned else "is not pinned by digest; append @sha256:<digest> (conf require: digest)"
    if pinned:
        return None
    if not tag:
        return "has no tag, so it runs whatever latest is at pull time; pin a version tag"
    if tag == "latest":
        return "uses the tag latest, which moves; pin a version tag"
    if require == "version" and not VERSION.match(tag):
        return (f"has the tag {tag}, which does not read as a version (1.2.3, v1.2.3, 7.2.5-alpine); pin a "
                "release tag or a digest (conf require: version)")
    return None


def check(ctx: Context, conf: dict):
    require = conf.get("require", "tag")
    if require not in REQUIRE:
        raise UsageError(f"policy.yaml: rule {ID}: conf require is {require!r}; use one of {', '.join(REQUIRE)}")
    for workload in ctx.workloads():
        m = workload.manifest
        for container, pointer in workload.containers(init=True):
            image = container.get("image")
            if not image or not isinstance(image, str):
                yield Finding(m, pointer, f"{m.ref}: container {container_name(container)} has no image; set one")
                continue
            problem = _problem(image.strip(), require)
            if problem:
                yield Finding(m, f"{pointer}/image", f"{m.ref}: container {container_name(container)} image {image} "
                                                     f"{problem}")
