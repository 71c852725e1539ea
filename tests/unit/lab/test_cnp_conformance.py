"""The pure parts of ``picket_lab.kind.cnpconformance``: command line, operator restart, test2json
results, failure reasons, summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

from picket_lab.kind import cnpconformance as cc

BIN = Path("/cache/netpolapi-v0.2.0/conformance.test")
T2J = Path("/go/pkg/tool/linux_amd64/test2json")


def event(action: str, test: str, output: str = "", elapsed: float | None = None) -> str:
    e: dict[str, object] = {"Action": action, "Package": "cnp-conformance", "Test": test}
    if output:
        e["Output"] = output
    if elapsed is not None:
        e["Elapsed"] = elapsed
    return json.dumps(e)


def test_default_settings_run_the_profile_and_skip_sctp_only_tests(tmp_path: Path) -> None:
    s = cc.parse_settings(["--report-dir", str(tmp_path)])
    argv = cc.suite_argv(s, T2J, BIN)
    assert argv[:6] == ["ip", "netns", "exec", "pkt-kind", "env", "KUBECONFIG=/run/picket-kind/kubeconfig"]
    assert argv[6:10] == [str(T2J), "-t", "-p", "cnp-conformance"]
    suite = argv[10:]
    assert suite[0] == str(BIN)
    assert suite[suite.index("-test.run") + 1] == "^TestConformanceProfiles$"
    assert suite[suite.index("-test.skip") + 1] == cc.SCTP_SKIP
    assert "-test.v=test2json" in suite and "-test.v" not in suite
    assert "--conformance-profiles=ClusterNetworkPolicy" in suite
    assert ("--supported-features=ClusterNetworkPolicy,ClusterNetworkPolicyNamedPorts,"
            "ClusterNetworkPolicyEgressNodePeers") in suite
    assert f"--report-output={tmp_path / 'conformance-report.yaml'}" in suite


def test_the_sctp_skip_selects_exactly_the_four_sctp_only_tests() -> None:
    level2 = re.compile(cc.SCTP_SKIP.split("/", 1)[1])
    assert sorted(n for n in cc.TEST_NAMES if level2.search(n)) == [
        "CNPAdminTierEgressSCTP", "CNPAdminTierIngressSCTP", "CNPBaselineTierEgressSCTP", "CNPBaselineTierIngressSCTP"]


def test_subset_selects_exactly_its_tests_and_nothing_sctp(tmp_path: Path) -> None:
    s = cc.parse_settings(["--subset", "--report-dir", str(tmp_path), "--skip", ""])
    top, rest = s.run.split("/", 1)
    assert re.search(top, "TestConformanceProfiles")
    assert sorted(n for n in cc.TEST_NAMES if re.search(rest, n)) == sorted(cc.CI_SUBSET)
    assert "-test.skip" not in cc.suite_argv(s, T2J, BIN)
    assert not any("SCTP" in n for n in cc.CI_SUBSET)


def test_operator_restart_only_when_a_replica_predates_the_crd() -> None:
    crd = {"status": {"conditions": [{"type": "Established", "status": "True",
                                      "lastTransitionTime": "2026-12-02T10:00:00Z"}]}}
    after = {"items": [{"status": {"startTime": "2026-12-02T10:00:05Z"}},
                       {"status": {"startTime": "2026-12-02T10:01:00Z"}}]}
    before = {"items": [{"status": {"startTime": "2026-12-02T10:00:05Z"}},
                        {"status": {"startTime": "2026-12-02T09:59:00Z"}}]}
    assert not cc.operator_needs_restart(crd, after)
    assert cc.operator_needs_restart(crd, before)
    assert cc.operator_needs_restart({"status": {}}, after)  # cannot tell: restart
    assert cc.operator_needs_restart(crd, {"items": []})


PODS = [cc.Pod("network-policy-conformance-gryffindor", "harry-potter-1", "picket-worker", "10.244.1.7", False),
        cc.Pod("network-policy-conformance-forbidden-forrest", "centaur-1", "picket-worker", "172.18.0.3", True),
        cc.Pod("network-policy-conformance-hufflepuff", "cedric-diggory-0", "picket-worker2", "10.244.2.4", False)]
NODE_PEER = ("TestConformanceProfiles/CNPAdminTierEgressNodePeers/"
             "Should_support_a_'deny-egress'_rule_policy_for_egress-node-peer")
GRESS = "TestConformanceProfiles/CNPAdminTierGress/Should_support_an_'allow-gress'_policy_across_different_protocols"
EVENTS = [
    event("run", "TestConformanceProfiles"),
    event("output", "TestConformanceProfiles", "    conformance_test.go:1: Test Setup: Applying base manifests\n"),
    event("run", "TestConformanceProfiles/CNPAdminTierEgressTCP"),
    event("pass", "TestConformanceProfiles/CNPAdminTierEgressTCP", elapsed=12.5),
    event("run", "TestConformanceProfiles/CNPAdminTierEgressNodePeers"),
    event("run", NODE_PEER),
    event("output", NODE_PEER, "    helper.go:94: FAILED Command was [/agnhost connect --timeout=3s --protocol=tcp "
                               "172.18.0.3:34346]\n"),
    event("output", NODE_PEER, "    helper.go:95: Expected connection to fail from "
                               "network-policy-conformance-gryffindor/harry-potter-1 to 172.18.0.3, "
                               "but instead it successfully connected.\n"),
    event("fail", NODE_PEER, elapsed=10.0),
    event("fail", "TestConformanceProfiles/CNPAdminTierEgressNodePeers", elapsed=31.0),
    event("run", "TestConformanceProfiles/CNPAdminTierGress"),
    event("run", GRESS),
    event("output", GRESS, "    helper.go:94: FAILED Command was [/agnhost connect --timeout=3s --protocol=sctp "
                           "10.244.2.4:9003]\n"),
    event("output", GRESS, "    helper.go:85: Expected connection to succeed from "
                           "network-policy-conformance-gryffindor/harry-potter-0 to 10.244.2.4, "
                           "but instead it miserably failed. stderr: protocol not supported\n"),
    event("fail", GRESS, elapsed=10.0),
    event("fail", "TestConformanceProfiles/CNPAdminTierGress", elapsed=20.0),
    event("run", "TestConformanceProfiles/CNPBaselineTierEgressNamedPort"),
    event("output", "TestConformanceProfiles/CNPBaselineTierEgressNamedPort",
          "    suite.go:213: Skipping CNPBaselineTierEgressNamedPort: "
          "suite does not support ClusterNetworkPolicyNamedPorts\n"),
    event("skip", "TestConformanceProfiles/CNPBaselineTierEgressNamedPort", elapsed=0.0),
    "not json at all",
    event("fail", "TestConformanceProfiles", elapsed=90.0),
]


def test_parse_events_results_per_test_and_subtest() -> None:
    results, top = cc.parse_events(EVENTS)
    by = {r.name: r for r in results}
    assert by["CNPAdminTierEgressTCP"].status == "passed" and by["CNPAdminTierEgressTCP"].seconds == 12.5
    assert by["CNPAdminTierEgressNodePeers"].status == "failed"
    assert by["CNPBaselineTierEgressNamedPort"].status == "skipped"
    assert not by[NODE_PEER.split("/", 1)[1]].top
    assert any("Applying base manifests" in line for line in top)
    summary = cc.summarise(results)
    assert summary.line() == "1 passed, 2 failed, 1 skipped"
    assert (summary.subtests_passed, summary.subtests_failed) == (0, 2)


def test_failure_reasons_name_the_probe_and_the_cause() -> None:
    results, _ = cc.parse_events(EVENTS)
    by = {r.name: r for r in results}
    node = cc.failure_reason(by[NODE_PEER.split("/", 1)[1]], PODS)
    assert node.startswith("tcp network-policy-conformance-gryffindor/harry-potter-1 -> 172.18.0.3:34346: "
                           "connected, must be denied")
    assert "share node picket-worker" in node
    sctp = cc.failure_reason(by[GRESS.split("/", 1)[1]], PODS)
    assert sctp.startswith("sctp network-policy-conformance-gryffindor/harry-potter-0 -> 10.244.2.4:9003: "
                           "no connection, must connect")
    assert "SCTP" in sctp and "EPROTONOSUPPORT" in sctp


def test_result_lines_one_per_test_with_failed_subtests_and_skip_reasons() -> None:
    results, _ = cc.parse_events(EVENTS)
    results += cc.skipped_by_flag(cc.TEST_NAMES, results, cc.SCTP_SKIP)
    lines = cc.result_lines(results, PODS, cc.SCTP_SKIP)
    tops = [ln for ln in lines if not ln.startswith(" ")]
    assert len(tops) == 4 + 4  # four that ran, four skipped by -test.skip
    assert any(ln.startswith("PASS   12.5s  CNPAdminTierEgressTCP") for ln in tops)
    assert any("CNPAdminTierIngressSCTP" in ln and "no SCTP" in ln for ln in tops)
    assert any("does not support ClusterNetworkPolicyNamedPorts" in ln for ln in tops)
    assert any(ln.strip().startswith("FAIL Should support a 'deny-egress' rule policy for egress-node-peer:")
               for ln in lines)
    assert cc.summarise(results).line() == "1 passed, 2 failed, 5 skipped"


def test_a_test_that_never_finished_counts_as_failed() -> None:
    results, _ = cc.parse_events([event("run", "TestConformanceProfiles/CNPAdminTierEgressUDP")])
    assert cc.summarise(results).line() == "0 passed, 1 failed, 0 skipped"
    assert "never finished" in cc.result_lines(results, [], "")[0]


def test_placement_reads_a_pod_list() -> None:
    pods = cc.placement({"items": [{"metadata": {"namespace": "n", "name": "p"},
                                    "spec": {"nodeName": "w", "hostNetwork": True}, "status": {"podIP": "1.2.3.4"}}]})
    assert pods == [cc.Pod("n", "p", "w", "1.2.3.4", True)]


def test_the_image_wrapper_passes_everything_through_but_sctp_listeners() -> None:
    assert cc.WRAPPER.startswith("#!/bin/bash\n")
    assert 'exec /usr/local/bin/agnhost-bin "$@"' in cc.WRAPPER
    assert "SERVE_SCTP_PORT_" in cc.WRAPPER and "/proc/sys/net/sctp" in cc.WRAPPER
    docker = cc.agnhost_dockerfile("busybox:1.36", "abc")
    assert docker.startswith("FROM busybox:1.36\n") and 'ENTRYPOINT ["/agnhost"]' in docker


def test_api_server_gone_and_non_timeout_refusals_are_named() -> None:
    down = cc.TestResult("CNPAdminTierIngressUDP", "failed", 0.0, [
        "    apply.go:144: \n", "        \tError:      \tReceived unexpected error:\n",
        '        \t            \tGet "https://127.0.0.1:43833/apis/policy.networking.k8s.io/v1alpha2/'
        'clusternetworkpolicies/ingress-udp": dial tcp 127.0.0.1:43833: connect: connection refused\n'])
    assert "API server stopped answering" in cc.failure_reason(down, [])
    assert "API server stopped answering" in cc.result_lines([down], [], "")[0]
    refused = cc.TestResult("CNPAdminTierGress/Should_support_an_'deny-gress'_policy_across_different_protocols",
                            "failed", 10.0, [
        "    helper.go:71: FAILED Command was [/agnhost connect --timeout=3s --protocol=sctp 10.244.1.65:9003]\n",
        "    helper.go:71: Expected connection to be dropped from network-policy-conformance-gryffindor/harry-potter-0"
        " to 10.244.1.65, but instead it returned a different status: OTHER: protocol not supported\n"])
    reason = cc.failure_reason(refused, [])
    assert "failed with 'OTHER: protocol not supported', must time out" in reason and "SCTP" in reason
