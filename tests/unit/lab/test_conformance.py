"""The conformance command's pure parts: command lines, JUnit parsing, the summary, the CI subset's focus."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from picket_lab.kind import conformance as conf
from picket_lab.kind.conformance import (
    CI_SUBSET,
    NETPOL_FOCUS,
    SCTP_REASON,
    SCTP_SKIP,
    CaseResult,
    parse_junit,
    parse_settings,
    result_lines,
    run_argv,
    selected,
    subset_focus,
    summarise,
)

TCP = "[sig-network] Netpol NetworkPolicy between server and client "
SCTP = "[sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP "
JUNIT = f"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="6" disabled="4" errors="0" failures="1" time="95.2">
  <testsuite name="Kubernetes e2e suite" package="/work" tests="6" disabled="0" skipped="3" errors="0" failures="1"
             time="95.2" timestamp="2026-12-02T10:00:00">
    <properties><property name="SuiteSucceeded" value="false"></property></properties>
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="0.5"></testcase>
    <testcase name="[It] {TCP}should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]"
              classname="Kubernetes e2e suite" status="passed" time="31.25"></testcase>
    <testcase name="[It] {TCP}should support allow-all policy [Feature:NetworkPolicy]"
              classname="Kubernetes e2e suite" status="failed" time="60.5">
      <failure message="" type="failed">[FAILED] Had 3 wrong results in reachability matrix
In [It] at: network_policy.go:120 @ 12/02/26 10:01:00.000
</failure>
    </testcase>
    <testcase name="[It] {SCTP}should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]"
              classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [sig-storage] CSI mock volume should do storage things" classname="Kubernetes e2e suite"
              status="skipped" time="0"><skipped message="skipped"></skipped></testcase>
    <testcase name="[SynchronizedAfterSuite]" classname="Kubernetes e2e suite" status="passed" time="3"></testcase>
  </testsuite>
</testsuites>
"""


def test_junit_cases_lose_their_leaf_prefix_and_keep_status_time_and_failure_text() -> None:
    results = {r.name: r for r in parse_junit(JUNIT)}
    deny = results[TCP + "should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]"]
    assert (deny.status, deny.seconds, deny.message) == ("passed", 31.25, "")
    allow = results[TCP + "should support allow-all policy [Feature:NetworkPolicy]"]
    assert allow.status == "failed" and "Had 3 wrong results" in allow.message
    assert results["[SynchronizedBeforeSuite]"].status == "passed"


def test_only_the_focused_tests_count_and_the_rest_of_the_binary_is_left_out() -> None:
    names = [r.name for r in selected(parse_junit(JUNIT), NETPOL_FOCUS)]
    assert len(names) == 3
    assert not any("sig-storage" in n or "Suite" in n for n in names)


def test_a_failed_suite_node_is_always_reported() -> None:
    results = [CaseResult("[SynchronizedBeforeSuite]", "failed", 600, "timed out waiting for kube-system pods"),
               CaseResult(TCP + "x", "skipped", 0, "skipped")]
    assert [r.name for r in selected(results, NETPOL_FOCUS)] == ["[SynchronizedBeforeSuite]", TCP + "x"]


def test_summary_counts_and_median_ignore_skipped_tests() -> None:
    summary = summarise(selected(parse_junit(JUNIT), NETPOL_FOCUS))
    assert summary.line() == "1 passed, 1 failed, 1 skipped"
    assert summary.median_seconds == pytest.approx((31.25 + 60.5) / 2)
    assert summary.total_seconds == pytest.approx(91.75)


def test_one_line_per_test_and_sctp_skips_say_why() -> None:
    lines = result_lines(selected(parse_junit(JUNIT), NETPOL_FOCUS), SCTP_SKIP)
    assert len(lines) == 3
    skipped = [ln for ln in lines if ln.startswith("SKIP")]
    assert len(skipped) == 1 and skipped[0].endswith(f"({SCTP_REASON})")
    assert any(ln.startswith("PASS   31.2s  " + TCP) for ln in lines)
    assert any(ln.startswith("FAIL   60.5s  " + TCP) for ln in lines)


def test_first_failure_line_is_the_matrix_verdict() -> None:
    failed = next(r for r in parse_junit(JUNIT) if r.status == "failed")
    assert conf.first_failure_line(failed) == "[FAILED] Had 3 wrong results in reachability matrix"


def test_the_sctp_skip_leaves_the_tests_that_only_name_sctp_in_a_policy() -> None:
    skip = re.compile(SCTP_SKIP)
    assert skip.search(SCTP + "should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]")
    assert not skip.search(TCP + "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the "
                                 "plugin doesn't support SCTP [Feature:NetworkPolicy]")


def test_subset_focus_selects_exactly_the_subset() -> None:
    focus = re.compile(subset_focus(CI_SUBSET))
    for name in CI_SUBSET:
        assert focus.search(name + " [Feature:NetworkPolicy]")
        assert focus.search(name)
    # the same test text under another Describe (UDP, SCTP) or a longer name must not match
    assert not focus.search(SCTP + "should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]")
    assert not focus.search(TCP + "should support a 'default-deny-ingress' policy, twice [Feature:NetworkPolicy]")
    assert len(CI_SUBSET) == len(set(CI_SUBSET)) == 5


def test_settings_default_to_the_whole_suite_without_sctp(tmp_path: Path) -> None:
    s = parse_settings(["--kind-dir", str(tmp_path)])
    assert (s.focus, s.skip, s.procs) == (NETPOL_FOCUS, SCTP_SKIP, 1)
    assert s.kubeconfig == tmp_path / "kubeconfig"
    assert s.docker_host == f"unix://{tmp_path}/docker.sock"
    assert s.report_dir.parent == tmp_path / "conformance"
    assert parse_settings(["--subset"]).focus == subset_focus(CI_SUBSET)


@pytest.mark.parametrize("argv", [["--procs", "0"], ["--focus", "("], ["--subset", "--focus", "x"]])
def test_bad_settings_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings(argv)


def test_one_process_runs_e2e_test_itself_with_upstreams_flags_in_the_engines_netns(tmp_path: Path) -> None:
    s = parse_settings(["--kind-dir", str(tmp_path), "--report-dir", str(tmp_path / "r")])
    argv = run_argv(s, Path("/c/e2e.test"), Path("/c/ginkgo"))
    assert argv[:5] == ["ip", "netns", "exec", "pkt-kind", "/c/e2e.test"]
    assert f"--ginkgo.focus={NETPOL_FOCUS}" in argv and f"--ginkgo.skip={SCTP_SKIP}" in argv
    for flag in ("--provider=skeleton", f"--kubeconfig={tmp_path}/kubeconfig", f"--report-dir={tmp_path}/r"):
        assert flag in argv


def test_several_processes_go_through_ginkgos_cli(tmp_path: Path) -> None:
    s = parse_settings(["--kind-dir", str(tmp_path), "--procs", "4"])
    argv = run_argv(s, Path("/c/e2e.test"), Path("/c/ginkgo"))
    assert argv[4:6] == ["/c/ginkgo", "--procs=4"]
    binary = argv.index("/c/e2e.test")
    assert argv[binary + 1] == "--" and "--provider=skeleton" in argv[binary + 2:]
    assert f"--focus={NETPOL_FOCUS}" in argv[:binary]


def _pod(name: str, phase: str, ready: bool, waiting: str = "") -> dict[str, object]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}],
                       "containerStatuses": [{"state": state}]}}


def test_system_pods_not_ready_are_named_with_their_reason() -> None:
    pods = {"items": [_pod("etcd", "Running", True), _pod("coredns-1", "Pending", False, "ImagePullBackOff"),
                      _pod("done", "Succeeded", False), _pod("starting", "Running", False)]}
    assert conf.pods_not_ready(pods) == ["coredns-1 (ImagePullBackOff)", "starting (Running)"]


def test_upstreams_startup_wait_is_skipped_only_when_a_system_pod_cannot_start() -> None:
    assert conf.startup_flags([], []) == []
    assert conf.startup_flags(["coredns-1 (ErrImagePull)"], []) == ["--minStartupPods=-1"]
    assert conf.startup_flags(["coredns-1 (ErrImagePull)"], ["--minStartupPods=2"]) == []


def test_progress_counts_finished_specs_in_ginkgos_verbose_log(tmp_path: Path) -> None:
    log = tmp_path / "e2e.log"
    log.write_text("------------------------------\n• [7.247 seconds]\n[sig-network] Netpol ...\n"
                   "  I1202 probe #1 :: connectivity expected\n• [FAILED] [30.012 seconds]\n"
                   "SSSSSSSS\nS [SKIPPED] [0.000 seconds]\n  • [1.0 seconds] (indented: not ours)\n")
    assert conf._finished(log) == 3
    assert conf._finished(tmp_path / "absent") == 0


def test_convergence_counts_late_denies_and_allows_per_test() -> None:
    log = "\n".join([
        f"{TCP}should enforce updated policy [Feature:NetworkPolicy] [sig-network, Feature:NetworkPolicy]",
        "  I1202 kubemanager.go:215]  probe #1 :: connectivity not expected :: x/a -> 10.96.0.1",
        "  I1202 kubemanager.go:215]  probe #2 :: connectivity not expected :: x/a -> 10.96.0.1",
        "  I1202 kubemanager.go:215] probe #1 :: connectivity expected :: x/b -> 10.96.0.2 :: stderr - TIMEOUT",
        f"{TCP}should support allow-all policy [Feature:NetworkPolicy] [sig-network, Feature:NetworkPolicy]",
    ])
    found = conf.convergence(log)
    assert found == [conf.Convergence(TCP + "should enforce updated policy [Feature:NetworkPolicy]", 2, 2, 1, 1)]
    lines = conf.convergence_lines(found)
    assert "1 test(s)" in lines[0] and "2 late deny (up to attempt 2), 1 late allow" in lines[1]
    assert conf.convergence_lines([]) == ["convergence: every probe matched on its first attempt"]
