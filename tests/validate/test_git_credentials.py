from tests.validate.helpers import config, run_rule

CFG = config(git_credentials_secret="repo-creds")


def test_singleton_mounting_the_secret_read_only_passes():
    assert run_rule("git-credentials", "pass.yaml", cfg=CFG) == []


def test_without_a_configured_secret_the_rule_checks_nothing():
    assert run_rule("git-credentials", "fail-other-role.yaml") == []


def test_the_secret_name_can_come_from_the_rule_conf():
    cfg = config(rules={"git-credentials": {"conf": {"secretName": "repo-creds"}}})
    assert len(run_rule("git-credentials", "fail-other-role.yaml", cfg=cfg)) == 3


def test_workloads_of_other_roles_using_the_secret_fail_at_each_reference():
    found = run_rule("git-credentials", "fail-other-role.yaml", cfg=CFG)
    assert [(d.line, d.level) for d in found] == [(34, "error"), (37, "error"), (47, "error")]
    assert found[0].message.startswith("Deployment demo/pool: envFrom of container main uses the Git credentials")
    assert "role is autoscaled-pool" in found[0].message and "remove the reference" in found[0].message
    assert "env GIT_TOKEN" in found[1].message
    assert "Job demo/backup: volume git" in found[2].message and "role is unset" in found[2].message


def test_writable_mounts_fail_in_every_container():
    found = run_rule("git-credentials", "fail-writable.yaml", cfg=CFG)
    assert [(d.line, d.level) for d in found] == [(16, "error"), (23, "error")]
    assert "container clone mounts the Git credentials Secret repo-creds (volume git) writable" in found[0].message
    assert "container main" in found[1].message and "readOnly: true" in found[1].message


def test_singleton_reading_the_secret_only_from_env_fails():
    found = run_rule("git-credentials", "fail-not-mounted.yaml", cfg=CFG)
    assert [(d.line, d.level) for d in found] == [(13, "error")]
    assert "Deployment demo/leader: no singleton workload mounts the Git credentials Secret" in found[0].message
