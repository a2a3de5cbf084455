"""rendered/ means exactly what kustomize produced, to every YAML reader: the real Go reader is the oracle.

Kubernetes' own tools (kubectl, kubeconform, Argo CD) read YAML through sigs.k8s.io/yaml (go-yaml v2, a
YAML 1.1 reader). ``yamljson`` (gobuild/yamljson, pinned in tools.toml) is that reader: it prints the JSON
each of them sees per document. The tests below compare, for strings drawn from every look-alike pattern
and at random:

* kustomize's raw stream and the rendered files, both read by Go: the same JSON per object, less the two
  build-metadata annotations the render moves into the header comment (the documented difference);
* the rendered files read by Go, by PyYAML (YAML 1.1) and by ruamel (YAML 1.2): one meaning;
* the serialiser alone (any structure of strings, numbers, booleans, nulls) and the port of Go's resolver
  (:func:`doxops.yamlscalars.go_plain`) against the Go reader.

Hypothesis runs derandomized (a fixed sequence of examples) with a bounded count, so a run is reproducible;
each example batches many strings into one render.
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, configuration, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from doxops import render, toolchain, yamlio, yamlscalars
from doxops.render import serialise, tools
from doxops.cluster import binaries
from tests.conftest import copy_repo, run_dox

# Hypothesis keeps caches (``constants/``, ``unicode_data/``) in ``.hypothesis`` of the working directory from the
# moment a test is defined: point it at a temporary directory, removed at exit, so nothing is written in the clone.
_HOME = tempfile.mkdtemp(prefix="dox-hypothesis-")
configuration.set_hypothesis_home_dir(_HOME)
atexit.register(shutil.rmtree, _HOME, True)

ORIGIN_ANNOTATIONS = ("config.kubernetes.io/origin", "alpha.config.kubernetes.io/transformations")
#: Examples per property test: bounded, derandomized (the same sequence every run).
EXAMPLES = {"render": 20, "dump": 60, "plain": 60}


@pytest.fixture(scope="module")
def yamljson() -> Path:
    return binaries.ensure(["yamljson"], progress=lambda m: None).paths["yamljson"]


def go_read(reader: Path, text: str) -> list:
    """Every document of ``text`` as the Go reader sees it (parsed JSON, one per document)."""
    proc = subprocess.run([str(reader)], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.split("\n") if line]  # not splitlines(): U+0085 is text


def typed(value):
    """A value with its JSON type made explicit: True and 1, "1" and 1 never compare equal."""
    if isinstance(value, bool) or value is None:
        return ("bool" if value is not None else "null", value)
    if isinstance(value, (int, float)):
        # JSON has one number type: 1000.0 and 1000 are one number; beyond 2**53 compare as doubles, as
        # Go prints a large double as digits (6.8e+16 as 68332278403568490).
        if abs(value) > 2 ** 53:
            return ("number", float(value))
        return ("number", int(value) if float(value).is_integer() else value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, dict):
        return ("object", {str(k): typed(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("array", [typed(v) for v in value])
    return ("other", repr(value))


def without_build_metadata(obj: dict) -> dict:
    annotations = (obj.get("metadata") or {}).get("annotations")
    if annotations:
        for key in ORIGIN_ANNOTATIONS:
            annotations.pop(key, None)
        if not annotations:
            del obj["metadata"]["annotations"]
    return obj


# --------------------------------------------------------------------------- strategies

#: Words some reader takes for a boolean or null, in the cases a person might write them.
WORDS = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"]
RISKY = [
    "1234e56", "y", "Y", "N", "n", "0o17", "0O17", "1e3", "1E3", "12:30", "1:20:30", "0x1F", "0X1f", "1_000",
    "017", "09", "0b101", "-0b11", "+12", "-.5", ".5", "1.", "1.0e+3", ".inf", "-.Inf", ".NaN", "~", "null",
    "NULL", "", "=", "<<", "2026-01-02", "2026-1-2", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10",
    "1e400", "99999999999999999999", "18446744073709551615", "-9223372036854775809", "0x", "0b", "3000m",
    "100Mi", "1.2.3", "dev-local", "._5", ".5_5", "1__0", "_1", "e5", "0_x1F", "+", "-", "yes please",
]


def cased(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(word, upper)))


risky = st.one_of(
    st.sampled_from(RISKY),
    st.sampled_from(WORDS).flatmap(cased),
    st.from_regex(r"\A[-+]?[0-9_]{1,6}(\.[0-9_]{0,3})?([eE][-+]?[0-9]{1,3})?\Z"),
    st.from_regex(r"\A[-+]?0[xXoObB][0-9a-fA-F_]{0,6}\Z"),
    st.from_regex(r"\A[-+]?\.[0-9_]{1,4}([eE][-+]?[0-9]{1,2})?\Z"),
    st.from_regex(r"\A[-+]?[0-9]{1,3}(:[0-5]?[0-9]){1,2}(\.[0-9]{0,2})?\Z"),
    st.from_regex(r"\A[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?Z?)?\Z"),
    st.from_regex(r"\A[-+]?\.(inf|Inf|INF|nan|NaN|NAN|iNf)\Z"),
)
#: Any text a YAML file can hold (no lone surrogates), and text of the printable kind values usually are.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
printable_text = st.text(st.characters(exclude_categories=("Cs", "Cc", "Co", "Cn", "Zl", "Zp"),
                                       exclude_characters="\ufeff"), max_size=12)
#: Multi-line text (literal blocks, trailing newlines, indented first lines).
multiline = st.tuples(st.lists(st.one_of(printable_text, risky), min_size=2, max_size=3),
                      st.sampled_from(["", "\n", "\n\n"]), st.sampled_from(["", " ", "  "])).map(
    lambda parts: parts[2] + "\n".join(parts[0]) + parts[1])
value_strings = st.one_of(risky, risky, printable_text, multiline)
#: Kubernetes label/annotation keys: a DNS prefix and a name (the values are what is under test).
keys = st.from_regex(r"\Aexample\.com/[a-z][a-z0-9]{0,8}\Z")


# --------------------------------------------------------------------------- the resolver and the serialiser


@settings(max_examples=EXAMPLES["plain"], derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(risky, printable_text), min_size=1, max_size=40))
def test_go_plain_reads_plain_scalars_as_go_does(yamljson, tokens):
    """Every token that is a plain scalar: the port of Go's resolver gives what the Go reader gives."""
    # JSON has no infinity or NaN: Go's YAMLToJSON refuses them, so they are left out of the batch.
    plain = [t for t in tokens if is_plain_scalar(t) and finite(yamlscalars.go_plain(t))]
    text = "".join(f"k{i}: {t}\n" for i, t in enumerate(plain)) or "{}\n"
    [got] = go_read(yamljson, text)
    assert typed(got) == typed({f"k{i}": yamlscalars.go_plain(t) for i, t in enumerate(plain)}), text


def finite(value) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))


def is_plain_scalar(token: str) -> bool:
    """``token`` written after ``k: `` is one plain scalar with exactly that text."""
    if not token or token != token.strip() or "\n" in token:
        return False
    try:
        node = yaml.compose(f"k: {token}\n", Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return False
    value = node.value[0][1] if isinstance(node, yaml.MappingNode) and node.value else None
    return isinstance(value, yaml.ScalarNode) and value.style is None and value.value == token


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 64 - 1),
              st.floats(allow_nan=False, allow_infinity=False), risky, any_text, multiline),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(risky, any_text), inner,
                                                                         max_size=4)),
    max_leaves=30,
)


@settings(max_examples=EXAMPLES["dump"], derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(risky, any_text), json_values, max_size=12))
def test_dump_means_the_same_to_go_yaml11_and_yaml12_readers(yamljson, data):
    """yamlio.dump of any JSON-shaped value: Go, PyYAML (YAML 1.1) and ruamel (YAML 1.2) all read it back."""
    text = yamlio.dump(data)
    [go] = go_read(yamljson, "# header\n---\n" + text)
    assert typed(go) == typed(data), text
    assert typed(yaml.safe_load(text) or {}) == typed(data), text
    assert typed(YAML(typ="safe", pure=True).load(text) or {}) == typed(data), text


# --------------------------------------------------------------------------- the real render


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> dict:
    """A copy of the repository with an environment ``meaning`` whose values the tests plant."""
    repo = copy_repo(tmp_path_factory.mktemp("meaning") / "repo")
    env = repo / "environments" / "meaning"
    shutil.copytree(repo / "environments" / "prod", env)
    shutil.rmtree(env / "argocd")
    kustomization = yamlio.load_one(env / "kustomization.yaml")
    kustomization["resources"] = [*kustomization.get("resources", []), "planted.yaml"]
    kustomization.pop("patches", None)
    (env / "kustomization.yaml").write_text(yamlio.dump(kustomization))
    specs = toolchain.load_specs()
    tools = {n: toolchain.resolve(n, progress=lambda m: None, specs=specs).path for n in ("helm", "kustomize")}
    home = tmp_path_factory.mktemp("home")
    return {"repo": repo, "env": env, "tools": tools, "home": home, "values": (env / "values.yaml").read_text()}


def plant(scratch: dict, strings: dict[str, str], plain: dict[str, str]) -> None:
    """Strings through the chart (Ingress annotations, a nodeSelector), an overlay ConfigMap (data and
    labels) and Pod (env values), and plain tokens in an overlay object, as kustomize reads them."""
    env = scratch["env"]
    values = yaml.safe_load(scratch["values"])
    values.setdefault("hitlUI", {}).setdefault("ingress", {})["annotations"] = {
        f"example.com/a{i}": s for i, s in enumerate(strings.values())}
    values.setdefault("orchestrator", {})["nodeSelector"] = {
        f"example.com/s{i}": s for i, s in enumerate(strings.values())}
    # JSON is YAML in which every string is double-quoted (unambiguous for Helm); no \\u escapes: Go refuses
    # an astral character written as a surrogate pair.
    (env / "values.yaml").write_text(json.dumps(values, indent=1, ensure_ascii=False) + "\n")
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "planted", "labels": dict(strings)}, "data": dict(strings)}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "planted"}, "spec": {"containers": [{
        "name": "c", "image": "example/c:1",
        "env": [{"name": f"V{i}", "value": s} for i, s in enumerate(strings.values())]}]}}
    plain_doc = "apiVersion: example.com/v1\nkind: Planted\nmetadata:\n  name: plain\nspec:\n  none: null\n" + "".join(
        f"  {k}: {v}\n" for k, v in plain.items())
    (env / "planted.yaml").write_text("---\n".join([json.dumps(configmap, ensure_ascii=False) + "\n", json.dumps(pod, ensure_ascii=False) + "\n", plain_doc]))


def render_scratch(scratch: dict) -> tuple[str, list[str]]:
    """kustomize's raw stream and the rendered files (the render's own serialiser), in stream order."""
    directory, repo = scratch["env"], scratch["repo"]
    stream = tools.build_stream(directory, scratch["tools"], scratch["home"], repo)
    resources = serialise.normalise(stream, "environments/meaning", directory)
    files = [serialise.file_text(r, "environments/meaning") for r in resources]
    return stream, files


@settings(max_examples=EXAMPLES["render"], derandomize=True, database=None, deadline=None,
          phases=(Phase.explicit, Phase.generate),  # a failing batch is reported whole: shrinking renders for minutes
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(value_strings, min_size=10, max_size=40), st.lists(risky, min_size=5, max_size=30))
def test_rendered_files_mean_what_kustomize_produced(yamljson, scratch, strings, plain_tokens):
    """The oracle: Go reads kustomize's stream and rendered/ alike; every reader reads rendered/ alike."""
    planted = {f"example.com/k{i}": s for i, s in enumerate(strings)}
    # Plain tokens Go reads as infinity or NaN are left out: kustomize itself refuses them (JSON has none).
    plain = {f"p{i}": t for i, t in enumerate(plain_tokens) if is_plain_scalar(t) and finite(yamlscalars.go_plain(t))}
    plant(scratch, planted, plain)
    stream, files = render_scratch(scratch)
    assert not mismatches(yamljson, stream, files)
    rendered = go_read(yamljson, "".join(files))
    for got, text in zip(rendered, files):
        body = text.split("\n---\n", 1)[1]
        assert typed(yaml.safe_load(body)) == typed(got), text  # a YAML 1.1 reader (PyYAML)
        assert typed(YAML(typ="safe", pure=True).load(body)) == typed(got), text  # a YAML 1.2 reader (ruamel)
    # The planted strings arrive as the very same strings (kustomize kept them; the render did too).
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
    assert by_kind[("ConfigMap", "planted")].get("data", {}) == planted
    annotations = by_kind[("Ingress", "hitl-ui")]["metadata"]["annotations"]
    assert all(annotations[f"example.com/a{i}"] == s for i, s in enumerate(strings))
    pod = by_kind[("Pod", "planted")]["spec"]["containers"][0]
    assert [e.get("value", "") for e in pod["env"]] == list(strings)


def mismatches(yamljson: Path, stream: str, files: list[str]) -> list[tuple]:
    """Objects whose Go reading differs between kustomize's stream and the rendered files."""
    raw = [without_build_metadata(obj) for obj in go_read(yamljson, stream)]
    rendered = go_read(yamljson, "".join(files))
    assert len(raw) == len(rendered) == len(files)
    return [(want, got) for want, got in zip(raw, rendered) if typed(want) != typed(got)]


def test_the_oracle_catches_the_old_serialiser(yamljson, scratch, monkeypatch):
    """The oracle can fail: with PyYAML's own resolver (the serialiser before this test existed), the
    issue's look-alikes reach rendered/ plain and Go reads numbers and booleans where kustomize had strings."""
    planted = {f"example.com/k{i}": s for i, s in enumerate(["1234e56", "y", "N", "0o17", "1e3", "plain"])}
    plant(scratch, planted, {})
    monkeypatch.setattr(yamlio, "loads_go", yamlio.loads_all)  # the old reading of kustomize's stream
    monkeypatch.setattr(yamlio._Dumper, "resolve", yaml.resolver.Resolver.resolve)  # the old resolver
    stream, files = render_scratch(scratch)
    found = mismatches(yamljson, stream, files)
    assert found, "the old serialiser passed the oracle: the oracle cannot fail"
    configmap = next(got for _, got in found if got["kind"] == "ConfigMap")
    assert configmap["data"]["example.com/k0"] == 1.234e59 and configmap["data"]["example.com/k1"] is True
    monkeypatch.undo()
    stream, files = render_scratch(scratch)
    assert not mismatches(yamljson, stream, files)


# --------------------------------------------------------------------------- the issue's examples, end to end

#: The look-alikes of issue 15: Go's YAML 1.1 reader takes each, written plain, for a bool or a number
#: (12:30 and 0x1F only kept their quotes by the luck of PyYAML's resolver before).
ANNOTATIONS = {"example.com/yes": "y", "example.com/no": "N", "example.com/octal": "0o17",
               "example.com/float": "1e3", "example.com/sexagesimal": "12:30", "example.com/hex": "0x1F"}


def test_issue_examples_render_and_validate_clean_and_keep_their_type(repo_copy, yamljson):
    """minikube's image tags "1234e56" and prod's Ingress annotations y, N, 0o17, 1e3, 12:30, 0x1F."""
    values = repo_copy / "environments/minikube/values.yaml"
    values.write_text(values.read_text().replace("tag: dev-local", 'tag: "1234e56"'))
    prod = repo_copy / "environments/prod/values.yaml"
    planted = "".join(f'      {k}: "{v}"\n' for k, v in ANNOTATIONS.items())
    prod.write_text(prod.read_text().replace("    host: hitl.dox-asdlc.example.com\n",
                                             "    host: hitl.dox-asdlc.example.com\n    annotations:\n" + planted))
    proc = run_dox(repo_copy, "render", "validate", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workloads = repo_copy / "rendered/minikube/workloads"
    deployments = [go_read(yamljson, (workloads / f"deployment-{n}.yaml").read_text())[0]
                   for n in ("orchestrator", "workers", "hitl-ui")]
    for deployment in deployments:
        assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1234e56"
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1234e56")
    text = (repo_copy / "rendered/prod/workloads/ingress-hitl-ui.yaml").read_text()
    ingress = go_read(yamljson, text)[0]
    assert {k: ingress["metadata"]["annotations"][k] for k in ANNOTATIONS} == ANNOTATIONS
    assert "example.com/yes: 'y'" in text and "example.com/octal: '0o17'" in text


def test_provenance_names_chart_directories_not_aliases(repo_copy):
    """Headers and validate's "from" lines name helm/dox-asdlc/charts/hitl-ui, never charts/hitlUI."""
    assert render.template_path("dox-asdlc/charts/hitlUI/templates/ingress.yaml") == \
        "helm/dox-asdlc/charts/hitl-ui/templates/ingress.yaml"
    assert render.template_path("dox-asdlc/charts/knowledgeStore/templates/statefulset.yaml") == \
        "helm/dox-asdlc/charts/knowledge-store/templates/statefulset.yaml"
    assert render.template_path("dox-asdlc/charts/redis/templates/service.yaml") == \
        "helm/dox-asdlc/charts/redis/templates/service.yaml"
    assert render.template_path("dox-asdlc/templates/namespace.yaml") == "helm/dox-asdlc/templates/namespace.yaml"
    named = set()
    for path in (render.REPO_ROOT / "rendered").rglob("*.yaml"):
        for line in path.read_text().split("---", 1)[0].splitlines():
            if line.startswith("# Source: chart template: "):
                named.add(line.removeprefix("# Source: chart template: "))
    assert named and all((render.REPO_ROOT / p).is_file() for p in named), sorted(named)
    assert any("/charts/hitl-ui/" in p for p in named) and any("/charts/knowledge-store/" in p for p in named)
    # validate: a finding on a hitl-ui object names the template by its directory.
    deployment = repo_copy / "rendered/prod/workloads/deployment-hitl-ui.yaml"
    deployment.write_text(deployment.read_text().replace("readOnlyRootFilesystem: true",
                                                         "readOnlyRootFilesystem: false"))
    proc = run_dox(repo_copy, "validate", "--env", "prod")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "from helm/dox-asdlc/charts/hitl-ui/templates/deployment.yaml" in proc.stdout
    assert "charts/hitlUI" not in proc.stdout + proc.stderr
