from tests.validate.helpers import config, run_rule


def test_restricted_pods_pass_with_settings_at_pod_or_container_level():
    assert run_rule("pod-security", "pass.yaml") == []


def test_host_namespaces_and_host_path_fail_at_the_field():
    found = run_rule("pod-security", "fail-pod.yaml")
    assert [(d.line, d.level) for d in found] == [(9, "error"), (10, "error"), (11, "error"), (25, "error")]
    assert found[0].message.startswith("DaemonSet demo/agent: hostNetwork: true")
    assert "hostPID" in found[1].message and "hostIPC" in found[2].message
    assert "volume logs is of type hostPath" in found[3].message


def test_a_container_without_security_context_gets_one_finding_per_problem():
    found = run_rule("pod-security", "fail-container-unset.yaml")
    assert [(d.line, d.level) for d in found] == [(10, "error")] * 6
    text = " | ".join(d.message for d in found)
    for problem in ("allowPrivilegeEscalation is unset", "capabilities.drop does not contain ALL",
                    "readOnlyRootFilesystem is unset", "runAsNonRoot is unset", "runAsUser is unset",
                    "seccompProfile type is unset"):
        assert problem in text


def test_container_values_override_the_pod_and_fail_at_their_own_line():
    found = run_rule("pod-security", "fail-container-values.yaml")
    assert [d.line for d in found] == [17, 19, 20, 21, 22, 23, 24, 26, 27]
    messages = [d.message.split(": ", 1)[1] for d in found]
    assert messages[0].startswith("container main: port http binds hostPort 80")
    assert "runAsNonRoot is false" in messages[1]  # the container's false beats the pod's true
    assert "runAsUser 0 is root" in messages[2]
    assert "seccompProfile type is Unconfined" in messages[3]
    assert "allowPrivilegeEscalation is true" in messages[4]
    assert "privileged: true" in messages[5]
    assert "readOnlyRootFilesystem is false" in messages[6]
    assert "capabilities.drop does not contain ALL" in messages[7]
    assert "adds capability SYS_ADMIN" in messages[8]


def test_read_only_root_filesystem_can_be_turned_off_by_conf():
    cfg = config(rules={"pod-security": {"conf": {"readOnlyRootFilesystem": False}}})
    found = run_rule("pod-security", "fail-container-unset.yaml", cfg=cfg)
    assert len(found) == 5 and not any("readOnlyRootFilesystem" in d.message for d in found)


def test_pod_level_settings_volume_types_proc_mount_and_selinux_break_restricted_despite_good_containers():
    found = run_rule("pod-security", "fail-restricted-extras.yaml")
    words = ["volume share is of type nfs", "the pod's runAsUser is 0", "the pod's seccompProfile type is Unconfined",
             "sysctl kernel.msgmax", "procMount Unmasked", "SELinux type spc_t"]
    for word in words:
        assert any(word in d.message for d in found), (word, [d.message for d in found])
    assert len(found) == len(words)
