from tests.validate.helpers import run_rule


def test_cpu_and_memory_requests_and_memory_limit_pass_without_cpu_limit():
    assert run_rule("resources", "pass.yaml") == []


def test_each_missing_resource_fails_for_containers_and_init_containers():
    found = run_rule("resources", "fail.yaml")
    assert [(d.line, d.level) for d in found] == [(10, "error"), (10, "error"), (10, "error"), (15, "error"),
                                                  (16, "error")]
    assert all(d.message.startswith("Deployment demo/pool: container ") for d in found)
    assert {d.message.split(";")[0].rsplit(" ", 1)[1] for d in found[:3]} == {
        "resources.requests.cpu", "resources.requests.memory", "resources.limits.memory"}
    assert "container main sets no resources.requests.memory" in found[3].message
    assert "container main sets no resources.limits.memory" in found[4].message
