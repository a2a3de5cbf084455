from tests.validate.helpers import run_rule


def test_unique_names_and_resolving_references_pass():
    assert run_rule("pod-references", "pass.yaml") == []


def test_names_defined_twice_fail_at_the_repeat():
    found = run_rule("pod-references", "fail-names.yaml")
    expected = [
        (10, "imagePullSecrets lists registry twice (the API server only warns"),
        (13, "two volumes are named data (the API server rejects this)"),
        (17, "two containers are named main (initContainers/0 and containers/0"),
        (21, "container main names two ports db (the API server rejects this)"),
        (24, "container main defines env HOME twice; one value silently hides the other"),
        (27, "container main volumeMounts names volume dta, which the pod does not define (volumes: data;"),
        (27, "container main mounts two volumes at /var/lib/db (the API server rejects this)"),
    ]
    assert len(found) == len(expected), [d.message for d in found]
    for line, words in expected:
        assert any(d.line == line and words in d.message and d.level == "error" for d in found), (line, words)
    assert all(d.message.startswith("StatefulSet demo/db: ") for d in found)


def test_references_to_nothing_fail_at_the_reference():
    found = run_rule("pod-references", "fail-refs.yaml")
    expected = [
        (10, "resourceFieldRef names container worker, which the pod does not have (containers: exporter, main;"),
        (17, "env TOKEN reads a file of volume secrets, which the pod does not define"),
        (20, "container main uses volume block both as a mount and as a device (the API server rejects this)"),
        (21, "container main volumeDevices names volume disk, which the pod does not define"),
        (21, "container main has two volume devices at /dev/xvda"),
        (22, "container main livenessProbe uses port web, which the container does not declare (its port names: "
             "http; the API server does not check this"),
        (23, "container main readinessProbe uses port admin"),
        (24, "container main lifecycle.postStart uses port warmup"),
        (27, "port 8080/TCP is declared twice in the pod (containers/0 and containers/1; the API server only warns"),
        (27, "port name http is used by two containers (containers/0 and containers/1)"),
    ]
    assert len(found) == len(expected), [d.message for d in found]
    for line, words in expected:
        assert any(d.line == line and words in d.message for d in found), (line, words, [(d.line, d.message) for d in found])
