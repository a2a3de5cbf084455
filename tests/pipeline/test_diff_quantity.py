"""The diff's "stored identically" decision for quantities, proved against the real Kubernetes parser.

``gobuild/quantity`` is k8s.io/apimachinery's ``resource.ParseQuantity(s).String()`` at the pinned
Kubernetes version, built once into the tool cache (``[cluster.quantity]`` in tools.toml). Hypothesis
generates quantities (signs, leading zeros, fractions, every suffix, exponents, values past int64, bits of
garbage); every one is sent to the Go program in one batch and Python must give the same canonical form,
or refuse exactly what Go refuses. Equality of canonical forms is then exactly the API server's.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, Phase, configuration, given, settings, strategies as st

from doxops.cluster import binaries
from doxops.diff import quantity

# Hypothesis keeps caches (``constants/``) in ``.hypothesis`` of the working directory, from the moment a test is
# defined: point it at a temporary directory, removed at exit, so the test writes nothing in the clone.
_HOME = tempfile.mkdtemp(prefix="dox-hypothesis-")
configuration.set_hypothesis_home_dir(_HOME)
atexit.register(shutil.rmtree, _HOME, True)


@pytest.fixture(scope="module")
def go_canonical():
    path = binaries.ensure(["quantity"], progress=lambda m: None).paths["quantity"]

    def run(inputs: list[str]) -> list[str | None]:
        proc = subprocess.run([str(path)], input="".join(f"{i}\n" for i in inputs), capture_output=True,
                              text=True, timeout=60, check=True)
        lines = proc.stdout.splitlines()
        assert len(lines) == len(inputs), proc.stderr
        return [line.split("\t", 1)[1] if line.startswith("ok\t") else None for line in lines]

    return run


def python_canonical(text: str) -> str | None:
    try:
        return quantity.canonical(text)
    except ValueError:
        return None


SUFFIXES = ["", "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
digits = st.text("0123456789", min_size=0, max_size=22)
exponent = st.builds(lambda e, sign, letter: f"{letter}{sign}{e}", st.integers(0, 40), st.sampled_from(["", "+", "-"]),
                     st.sampled_from(["e", "E"]))
suffix = st.one_of(st.sampled_from(SUFFIXES), exponent, st.text("eEinumkKMGTP+-0123456789", max_size=4))
number = st.builds(lambda sign, zeros, num, dot, denom: f"{sign}{zeros}{num}{dot}{denom}",
                   st.sampled_from(["", "", "-", "+"]), st.sampled_from(["", "", "0", "00"]), digits,
                   st.sampled_from(["", "", "."]), st.text("0123456789", max_size=12))
quantities = st.builds(lambda n, s: n + s, number, suffix)


#: Batches are compared whole and every disagreement is listed, so shrinking (which would re-run Go for
#: each step) is left out: the message already names the inputs. No example database is written (hermetic).
BATCHES = settings(max_examples=40, deadline=None, phases=(Phase.explicit, Phase.generate), database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@BATCHES
@given(st.lists(quantities, min_size=50, max_size=50))
def test_python_canonical_form_is_the_go_parser(go_canonical, batch):
    """2,000 generated quantities per run (40 batches of 50), each compared with Go's answer."""
    expected = go_canonical(batch)
    wrong = [(q, go, python_canonical(q)) for q, go in zip(batch, expected) if python_canonical(q) != go]
    assert not wrong, "input, Go, Python: " + "; ".join(map(repr, wrong))


@BATCHES
@given(st.lists(st.tuples(quantities, quantities), min_size=20, max_size=20))
def test_same_in_cluster_agrees_with_go_on_pairs(go_canonical, pairs):
    """Pairs of quantities: ``same`` says equal exactly when Go stores the two alike."""
    flat = go_canonical([q for pair in pairs for q in pair])
    for (a, b), go_a, go_b in zip(pairs, flat[0::2], flat[1::2]):
        assert quantity.same(a, b) == (go_a is not None and go_a == go_b), (a, b, go_a, go_b)


def test_known_equal_amounts_from_the_issue(go_canonical):
    """The cases a reviewer meets: written differently, stored identically (and one that is not)."""
    pairs = [("1024Mi", "1Gi"), ("2000m", "2"), ("4096Mi", "4Gi"), ("1000M", "1G"), ("0.5", "500m")]
    assert all(quantity.same(a, b) for a, b in pairs)
    assert go_canonical([a for a, _ in pairs]) == go_canonical([b for _, b in pairs])
    # the same amount, but stored differently (binary vs decimal format): a real change to the object
    assert not quantity.same("1Gi", "1073741824") and go_canonical(["1Gi", "1073741824"]) == ["1Gi", "1073741824"]


def test_the_oracle_is_the_apimachinery_of_the_pinned_kubernetes():
    """k8s.io/apimachinery v0.X.Y is Kubernetes v1.X.Y; the e2e API server's build uses the same one."""
    import re

    from doxops.paths import REPO_ROOT

    specs = binaries.load_specs()
    kube = specs["kubernetes"].version  # v1.36.1
    assert specs["quantity"].version == "v0." + kube.removeprefix("v1.")
    kube_mod = (REPO_ROOT / specs["kubernetes"].gobuild / "go.mod").read_text()
    assert re.search(rf"k8s.io/apimachinery => k8s.io/apimachinery {re.escape(specs['quantity'].version)}\b", kube_mod)
