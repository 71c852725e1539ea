"""Upstream's NetworkPolicy conformance suite (``[sig-network] Netpol``), unmodified, against picket on kind.

``python3 -m picket_lab.kind.conformance [--subset | --focus REGEX] [--procs N]`` (what
``scripts/conformance.sh`` runs once the kind tier is up):

1. builds (once; cached and version-stamped) ``e2e.test``, ``agnhost`` and ``ginkgo`` for the local
   cluster's Kubernetes version (``e2ebuild``);
2. builds the agnhost image under the exact name the e2e framework asks for and loads it into every
   kind node (``e2eimages``), so that nothing is ever pulled;
3. runs ``e2e.test`` with upstream's own flags (``--provider=skeleton``, ``--kubeconfig``,
   ``--report-dir``, ``--ginkgo.focus``/``--ginkgo.skip``), inside the kind engine's network
   namespace (the API server is published on that namespace's loopback); with ``--procs N > 1``
   through ginkgo's CLI, which runs N processes of the same binary;
4. reads the JUnit report (``junit_01.xml``), prints one line per test of the focus and
   ``N passed, M failed, K skipped``, and exits 0 only when nothing failed.

SCTP: the kernel here is built without SCTP (``CONFIG_IP_SCTP`` unset: ``socket(AF_INET, SOCK_STREAM,
IPPROTO_SCTP)`` fails with EPROTONOSUPPORT), so the three ``[Feature:SCTPConnectivity]`` tests, which
serve and connect over SCTP, are skipped with that reason. The two tests that only *name* SCTP in a
policy ("... even if the plugin doesn't support SCTP") probe over TCP and do run.

This command never creates or removes the kind cluster: it needs the kind tier up.
The pure parts (command lines, JUnit parsing, summary) are unit-tested in
``tests/unit/lab/test_conformance.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picket_lab.kind.layout import CLUSTER, NETNS, layout

NETPOL_FOCUS = r"\[sig-network\] Netpol"
SCTP_SKIP = r"\[Feature:SCTPConnectivity\]"
SCTP_REASON = "this kernel has no SCTP (CONFIG_IP_SCTP unset; socket(..., IPPROTO_SCTP) fails with EPROTONOSUPPORT)"
_TCP = "[sig-network] Netpol NetworkPolicy between server and client "
_UDP = "[sig-network] Netpol [LinuxOnly] NetworkPolicy between server and client using UDP "
# CI's fixed subset: TCP and UDP default deny, a namespace selector, an egress named port, ipBlock
# with except; each starts its own pods, so together they exercise every part of the harness.
CI_SUBSET = (
    _TCP + "should support a 'default-deny-ingress' policy",
    _TCP + "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
    _TCP + "should allow egress access on one named port",
    _TCP + "should enforce except clause while egress access to server in CIDR block",
    _UDP + "should support a 'default-deny-ingress' policy",
)


@dataclass(frozen=True)
class Settings:
    focus: str
    skip: str
    procs: int
    report_dir: Path
    kind_dir: Path
    netns: str
    cluster: str
    timeout_minutes: int
    extra: tuple[str, ...] = ()

    @property
    def kubeconfig(self) -> Path:
        return self.kind_dir / "kubeconfig"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.kind_dir / 'docker.sock'}"


def subset_focus(names: Sequence[str]) -> str:
    """A focus regex matching exactly these tests (the whole text before their [Feature:...] tags).

    Valid for ginkgo (Go's RE2, which refuses Python's escaped spaces) and for ``re``. Not anchored at
    the start: ginkgo matches it against a text that does not begin with the test's own name.
    """
    return "|".join(_RE_SPECIAL.sub(r"\\\g<0>", n) + r"( \[|$)" for n in names)


_RE_SPECIAL = re.compile(r"[\\.+*?()|\[\]{}^$]")


def parse_settings(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="picket_lab.kind.conformance",
                                     description="upstream's [sig-network] Netpol e2e suite against picket on kind")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--focus", help=f"ginkgo focus regex (default: the whole suite, {NETPOL_FOCUS!r})")
    which.add_argument("--subset", action="store_true", help="only CI's fixed subset (5 tests)")
    parser.add_argument("--skip", default=SCTP_SKIP, help=f"ginkgo skip regex (default {SCTP_SKIP!r}: {SCTP_REASON})")
    parser.add_argument("--procs", type=int, default=1, help="parallel ginkgo processes (default 1)")
    parser.add_argument("--report-dir", type=Path, help="JUnit report and logs (default <kind dir>/conformance/<time>)")
    parser.add_argument("--kind-dir", type=Path, default=layout().run,
                        help="the kind tier's run directory (default: $PICKET_KIND_DIR or /run/picket-kind)")
    parser.add_argument("--timeout-minutes", type=int, default=120)
    parser.add_argument("--e2e-arg", action="append", default=[], metavar="FLAG",
                        help="one more flag for e2e.test (repeatable), e.g. --e2e-arg=--minStartupPods=-1")
    opts = parser.parse_args(list(argv))
    errors = []
    if opts.procs < 1:
        errors.append("--procs must be >= 1")
    if opts.focus is not None:
        try:
            re.compile(opts.focus)
        except re.error as exc:
            errors.append(f"--focus is not a regular expression: {exc}")
    if errors:
        parser.error("; ".join(errors))
    focus = subset_focus(CI_SUBSET) if opts.subset else (opts.focus or NETPOL_FOCUS)
    report_dir = opts.report_dir or opts.kind_dir / "conformance" / time.strftime("%Y%m%dT%H%M%S")
    return Settings(focus, opts.skip, opts.procs, report_dir, opts.kind_dir, NETNS, CLUSTER,
                    opts.timeout_minutes, tuple(opts.e2e_arg))


def e2e_flags(s: Settings) -> list[str]:
    """upstream's own flags for e2e.test (what hack/ginkgo-e2e.sh passes for a provider-less cluster)."""
    return [f"--kubeconfig={s.kubeconfig}", "--provider=skeleton", f"--report-dir={s.report_dir}",
            "--disable-log-dump", *s.extra]


def run_argv(s: Settings, e2e_test: Path, ginkgo: Path) -> list[str]:
    """The whole command: e2e.test alone (one process) or ginkgo's CLI driving N of them; in the engine's netns."""
    netns = ["ip", "netns", "exec", s.netns]
    if s.procs == 1:
        return [*netns, str(e2e_test), f"--ginkgo.focus={s.focus}", f"--ginkgo.skip={s.skip}",
                f"--ginkgo.timeout={s.timeout_minutes}m", "--ginkgo.no-color", "--ginkgo.v", *e2e_flags(s)]
    return [*netns, str(ginkgo), f"--procs={s.procs}", f"--focus={s.focus}", f"--skip={s.skip}",
            f"--timeout={s.timeout_minutes}m", "--no-color", "-v", str(e2e_test), "--", *e2e_flags(s)]


@dataclass(frozen=True)
class CaseResult:
    name: str
    status: str  # passed | failed | skipped
    seconds: float
    message: str


def parse_junit(xml_text: str) -> list[CaseResult]:
    """Every testcase of a ginkgo JUnit report, with the leaf type prefix (``[It] ``) removed from Its."""
    results = []
    for case in ET.fromstring(xml_text).iter("testcase"):
        name = case.get("name", "")
        if name.startswith("[It] "):
            name = name[len("[It] "):]
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            status, message = "failed", (failure.text or failure.get("message") or failure.get("type") or "").strip()
        elif skipped is not None:
            status, message = "skipped", skipped.get("message", "")
        else:
            status, message = "passed", ""
        results.append(CaseResult(name, status, float(case.get("time") or 0.0), message))
    return results


def selected(results: Sequence[CaseResult], focus: str) -> list[CaseResult]:
    """The tests the focus selects (ginkgo lists every spec of the binary; the others are 'skipped'), plus any
    suite-level node that failed (a failed [SynchronizedBeforeSuite] means no test ran)."""
    pattern = re.compile(focus)
    return [r for r in results if pattern.search(r.name) or (r.status == "failed" and _suite_node(r))]


def _suite_node(result: CaseResult) -> bool:
    return result.name.startswith("[") and not result.name.startswith("[sig-")


def skip_reason(result: CaseResult, skip: str) -> str:
    if skip == SCTP_SKIP and re.search(SCTP_SKIP, result.name):
        return SCTP_REASON
    return result.message or "skipped"


@dataclass(frozen=True)
class Summary:
    passed: int
    failed: int
    skipped: int
    median_seconds: float
    total_seconds: float

    def line(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"


def summarise(results: Sequence[CaseResult]) -> Summary:
    ran = [r.seconds for r in results if r.status != "skipped"]
    return Summary(sum(r.status == "passed" for r in results), sum(r.status == "failed" for r in results),
                   sum(r.status == "skipped" for r in results),
                   statistics.median(ran) if ran else 0.0, sum(ran))


def result_lines(results: Sequence[CaseResult], skip: str) -> list[str]:
    lines = []
    for r in sorted(results, key=lambda r: r.name):
        tag = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[r.status]
        line = f"{tag} {r.seconds:6.1f}s  {r.name}"
        if r.status == "skipped":
            line += f"  ({skip_reason(r, skip)})"
        lines.append(line)
    return lines


def first_failure_line(result: CaseResult) -> str:
    """The most telling line of a failure: the matrix verdict when there is one, else the first line."""
    lines = [ln.strip() for ln in result.message.splitlines() if ln.strip()]
    return next((ln for ln in lines if "wrong results" in ln), lines[0] if lines else "")


def pods_not_ready(pod_list: dict[str, Any]) -> list[str]:
    """``name (reason)`` of the pods of a ``kubectl get pods -o json`` list that are not Running and Ready."""
    found = []
    for pod in pod_list.get("items", []):
        status = pod.get("status", {})
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
        if status.get("phase") in ("Running", "Succeeded") and (ready or status.get("phase") == "Succeeded"):
            continue
        reasons = sorted({(cs.get("state", {}).get("waiting") or {}).get("reason", "")
                          for cs in status.get("containerStatuses", [])} - {""})
        found.append(f"{pod['metadata']['name']} ({', '.join(reasons) or status.get('phase', 'Unknown')})")
    return found


def startup_flags(not_ready: Sequence[str], extra: Sequence[str]) -> list[str]:
    """upstream waits (10 min) for every kube-system pod before any test; when some cannot start here the
    netpol suite does not need (it probes Service IPs, never names), say so and skip that wait."""
    if not not_ready or any(f.startswith("--minStartupPods") for f in extra):
        return []
    return ["--minStartupPods=-1"]


_SPEC_START = re.compile(r"^(\[sig-network\] .*?)(?: \[sig-network(?:, [^\]]*)?\])?$")  # name, then labels
_RETRY = re.compile(r"probe #(\d+) :: connectivity (not )?expected :: (\S+) -> (\S+)")


@dataclass(frozen=True)
class Convergence:
    """What upstream's prober saw while picket converged, per test (from ``e2e.log``).

    ``late_deny``: probes of pairs that must be denied but still connected (the policy was not yet
    enforced), and the highest attempt number among them (attempts are 1 s apart);
    ``late_allow``: the same for pairs that must connect but did not yet (new pods, new peers).
    """

    test: str
    late_deny: int
    late_deny_attempts: int
    late_allow: int
    late_allow_attempts: int


def convergence(log_text: str) -> list[Convergence]:
    seen: dict[str, list[int]] = {}
    current = ""
    for line in log_text.splitlines():
        start = _SPEC_START.match(line)
        if start:
            current = start.group(1)
            continue
        retry = _RETRY.search(line)
        if retry and current:
            counts = seen.setdefault(current, [0, 0, 0, 0])
            deny = retry.group(2) is not None
            counts[0 if deny else 2] += 1
            counts[1 if deny else 3] = max(counts[1 if deny else 3], int(retry.group(1)))
    return [Convergence(t, *c) for t, c in seen.items()]


def convergence_lines(found: Sequence[Convergence]) -> list[str]:
    if not found:
        return ["convergence: every probe matched on its first attempt"]
    lines = [f"convergence: {len(found)} test(s) retried probes while picket converged (attempts are 1 s apart):"]
    for c in sorted(found, key=lambda c: -max(c.late_deny_attempts, c.late_allow_attempts)):
        lines.append(f"  {c.late_deny} late deny (up to attempt {c.late_deny_attempts}), {c.late_allow} late allow "
                     f"(up to attempt {c.late_allow_attempts}): {c.test}")
    return lines


Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    # Imported here: the pure helpers above load nothing heavy.
    from picket_lab.build import BuildError
    from picket_lab.kind import e2ebuild, e2eimages

    s = parse_settings(sys.argv[1:] if argv is None else argv)
    try:
        tools = e2ebuild.ensure_e2e_tools(_say)
        if tools.built:
            _say(f"conformance: built {', '.join(tools.built)} in {tools.seconds:.0f}s")
        refs = json.loads(tools.paths.images_file.read_text())
        docker = e2eimages.docker_client(s.docker_host)
        nodes = e2eimages.kind_nodes(docker, s.cluster) if Path(s.docker_host[len("unix://"):]).exists() else []
        if not nodes or not s.kubeconfig.exists():
            _say(f"conformance: the kind tier is not up (no nodes of cluster {s.cluster!r} behind {s.docker_host}, "
                 f"or no {s.kubeconfig}); run 'picket kind up' (or scripts/conformance.sh) first")
            return 2
        agnhost = tools.paths.binary("agnhost")
        digest = hashlib.sha256(agnhost.read_bytes()).hexdigest()
        began = time.monotonic()
        image = e2eimages.ensure_agnhost_image(docker, refs["agnhost"], agnhost, digest)
        loaded = e2eimages.load_into_nodes(docker, image.ref, image.image_id, nodes)
        _say(f"conformance: {image.ref} {'built' if image.built else 'cached'}, loaded into "
             f"{', '.join(loaded) or 'no node (all had it)'} in {time.monotonic() - began:.1f}s")
        for node in nodes:
            missing = e2eimages.missing_in_node(docker, node, [refs["pause"]])
            if missing:
                _say(f"conformance: node {node} lacks {', '.join(missing)} (the node image should carry it)")
                return 2
    except (BuildError, e2eimages.ImageError) as exc:
        _say(f"conformance: {exc}")
        return 2
    not_ready = _system_pods_not_ready(s)
    flags = startup_flags(not_ready, s.extra)
    if flags:
        _say(f"conformance: kube-system pods not ready: {', '.join(not_ready)}; the netpol suite addresses Services "
             f"by IP (no DNS), so upstream's wait for them is skipped ({' '.join(flags)})")
        s = dataclasses.replace(s, extra=(*s.extra, *flags))
    return run_suite(s, tools.paths.binary("e2e.test"), tools.paths.binary("ginkgo"), _say)


def _system_pods_not_ready(s: Settings) -> list[str]:
    from picket_lab.paths import build_paths

    kubectl = build_paths().binary("kubectl")  # the local cluster's, same version (picket kind up builds it)
    if not kubectl.exists():
        return []  # upstream's own wait decides
    proc = subprocess.run(["ip", "netns", "exec", s.netns, str(kubectl), f"--kubeconfig={s.kubeconfig}", "get", "pods",
                           "-n", "kube-system", "-o", "json"], capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        return [f"(kubectl failed: {proc.stderr.strip()[-300:]})"]
    return pods_not_ready(json.loads(proc.stdout))


def run_suite(s: Settings, e2e_test: Path, ginkgo: Path, say: Say) -> int:
    s.report_dir.mkdir(parents=True, exist_ok=True)
    log = s.report_dir / "e2e.log"
    argv = run_argv(s, e2e_test, ginkgo)
    say(f"conformance: running upstream's suite (focus {s.focus!r}, skip {s.skip!r}, {s.procs} process(es)); "
        f"log: {log}")
    began = time.monotonic()
    with open(log, "w") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=s.report_dir)
        while True:
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                say(f"conformance:   ... {time.monotonic() - began:.0f}s, {_finished(log)} test(s) finished")
    wall = time.monotonic() - began
    junit = s.report_dir / "junit_01.xml"
    if not junit.exists():
        say(f"conformance: e2e.test exited {proc.returncode} without a JUnit report; read {log}")
        return 1
    results = selected(parse_junit(junit.read_text()), s.focus)
    for line in result_lines(results, s.skip):
        say(line)
    for r in results:
        if r.status == "failed":
            say(f"  {r.name}: {first_failure_line(r)}")
    for line in convergence_lines(convergence(log.read_text(errors="replace"))):
        say(line)
    summary = summarise(results)
    say(f"{summary.line()} (wall time {wall:.0f}s, per-test median {summary.median_seconds:.1f}s; "
        f"JUnit: {junit}; log: {log})")
    (s.report_dir / "summary.txt").write_text("\n".join([*result_lines(results, s.skip), summary.line()]) + "\n")
    return 0 if summary.failed == 0 and summary.passed > 0 and proc.returncode == 0 else 1


def _finished(log: Path) -> int:
    """Specs finished so far, from ginkgo's verbose output (``• [7.2 seconds]``, ``• [FAILED] [...]``)."""
    try:
        return len(_SPEC_END.findall(log.read_text(errors="replace")))
    except OSError:
        return 0


_SPEC_END = re.compile(r"^(?:•|S) (?:\[[A-Z]+\] )?\[[\d.]+ seconds\]$", re.MULTILINE)


if __name__ == "__main__":
    sys.exit(main())
