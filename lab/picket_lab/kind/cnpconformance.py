"""network-policy-api's conformance suite (profile ClusterNetworkPolicy), unmodified, against picket on kind.

``python3 -m picket_lab.kind.cnpconformance [--subset | --run REGEX] [--report-dir DIR]`` (what
``scripts/cnp-conformance.sh`` runs once the kind tier is up):

1. builds (once; Go's build cache) the suite's test binary from ``sigs.k8s.io/network-policy-api@v0.2.0``
   through the Go module proxy (``netpolapi.build_conformance``), its manifests embedded;
2. installs the ClusterNetworkPolicy CRD of the same release (experimental channel) and, when an
   operator replica started before the CRD was established (kopf watches only the kinds whose CRD
   exists at its start), restarts picket's operator and waits for the rollout;
3. builds ``registry.k8s.io/e2e-test-images/agnhost:2.45`` (the suite's image) from the agnhost the
   netpol conformance harness builds from source (``e2ebuild``; its subcommands ``serve-hostname``,
   ``netexec``, ``porter``, ``connect`` and ``pause`` are the ones the suite runs), on a Debian base
   like upstream's image (the suite's containers start with ``/bin/bash -c``), and loads it into every
   kind node (``e2eimages``): nothing is pulled;
4. runs the test binary (``TestConformanceProfiles``, profile ``ClusterNetworkPolicy``, features
   ``ClusterNetworkPolicyNamedPorts`` and ``ClusterNetworkPolicyEgressNodePeers``) under ``go tool
   test2json`` inside the kind engine's network namespace, writing the suite's own YAML report;
5. prints one line per test (failed subtests named, with the probe that failed and why),
   ``N passed, M failed, K skipped`` and the wall time; exits 0 only when nothing failed.

SCTP: this machine's kernel is built without SCTP (``CONFIG_IP_SCTP`` unset; ``socket(AF_INET,
SOCK_STREAM, IPPROTO_SCTP)`` fails with EPROTONOSUPPORT). The suite's base pods run ``agnhost
porter`` with ``SERVE_SCTP_PORT_*`` and porter exits when that listener fails, which would keep every
base pod unready and no test could run. So the image's ``/agnhost`` is a small bash wrapper around
the real binary: on a kernel without SCTP, ``porter`` starts without its SCTP listeners (logged),
everything else is passed through untouched. The four tests that only probe SCTP
(``CNP*SCTP``) are skipped with that reason (Go's ``-test.skip``); SCTP probes inside mixed tests
fail and are reported as such.

This command never creates or removes the kind cluster: it needs the kind tier up.
The pure parts are unit-tested in ``tests/unit/lab/test_cnp_conformance.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

KIND_DIR = "/run/picket-kind"
KIND_NETNS = "pkt-kind"
KIND_CLUSTER = "picket"
AGNHOST_REF = "registry.k8s.io/e2e-test-images/agnhost:2.45"
OPERATOR = ("picket-system", "picket-operator")
OPERATOR_SELECTOR = "app.kubernetes.io/name=picket-operator"
TOP = "TestConformanceProfiles"
SCTP_SKIP = f"^{TOP}$/SCTP$"
SCTP_REASON = "this kernel has no SCTP (CONFIG_IP_SCTP unset; socket(..., IPPROTO_SCTP) fails with EPROTONOSUPPORT)"
HOUSES = ("gryffindor", "slytherin", "hufflepuff", "ravenclaw", "forbidden-forrest")
# CI's fixed subset: an Admin and a Baseline tier test over TCP, UDP ingress in the Admin tier, the
# priority field, and a named port: the harness's every part (CRD, operator restart, image, report).
CI_SUBSET = ("CNPAdminTierIngressTCP", "CNPBaselineTierEgressTCP", "CNPAdminTierIngressUDP",
             "CNPAdminTierPriorityField", "CNPAdminTierIngressNamedPort")

# The image: upstream's agnhost image is agnhost on a Debian base; the suite starts its servers with
# /bin/bash -c. The busybox:1.36 stand-in of the kind tier is Debian bookworm (minbase, with bash).
WRAPPER = r"""#!/bin/bash
# agnhost, as the network-policy-api conformance suite runs it on picket's kind tier
# (picket_lab.kind.cnpconformance). The real binary is /usr/local/bin/agnhost-bin. This kernel may
# have no SCTP: then porter would exit when its SCTP listener fails and the suite's base pods would
# never be ready, so porter starts without its SCTP ports; SCTP probes to them fail as they must.
if [[ $1 == porter && ! -e /proc/sys/net/sctp ]]; then
  for v in $(compgen -e); do
    if [[ $v == SERVE_SCTP_PORT_* ]]; then
      echo "agnhost (picket kind tier): no SCTP in this kernel, porter does not serve ${v#SERVE_SCTP_PORT_}/sctp" >&2
      unset "$v"
    fi
  done
fi
exec /usr/local/bin/agnhost-bin "$@"
"""
IMAGE_LABEL = "dev.picket.cnpconformance.stamp"


def agnhost_dockerfile(base: str, stamp: str) -> str:
    return (f"FROM {base}\nCOPY agnhost /usr/local/bin/agnhost-bin\nCOPY agnhost.sh /agnhost\n"
            f"LABEL {IMAGE_LABEL}={stamp}\nENTRYPOINT [\"/agnhost\"]\nCMD [\"pause\"]\n")


@dataclass(frozen=True)
class Settings:
    run: str
    skip: str
    report_dir: Path
    kind_dir: Path
    netns: str
    cluster: str
    timeout_minutes: int
    features: tuple[str, ...]

    @property
    def kubeconfig(self) -> Path:
        return self.kind_dir / "kubeconfig"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.kind_dir / 'docker.sock'}"

    @property
    def kubectl(self) -> Path:
        return self.kind_dir / "bin" / "kubectl"

    @property
    def report(self) -> Path:
        return self.report_dir / "conformance-report.yaml"

    @property
    def events(self) -> Path:
        return self.report_dir / "test2json.jsonl"


def subset_run(names: Sequence[str]) -> str:
    """A ``-test.run`` expression selecting exactly these tests of the profile run."""
    return f"^{TOP}$/^({'|'.join(re.escape(n) for n in names)})$"


def parse_settings(argv: Sequence[str]) -> Settings:
    from picket_lab import netpolapi

    parser = argparse.ArgumentParser(prog="picket_lab.kind.cnpconformance",
                                     description="network-policy-api's conformance suite against picket on kind")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", help=f"Go -test.run expression (default: the whole profile, ^{TOP}$)")
    which.add_argument("--subset", action="store_true", help=f"only CI's fixed subset ({len(CI_SUBSET)} tests)")
    parser.add_argument("--skip", default=SCTP_SKIP, help=f"Go -test.skip expression (default {SCTP_SKIP!r}: "
                                                          f"{SCTP_REASON}); '' runs everything")
    parser.add_argument("--report-dir", type=Path,
                        help="report, events and logs (default <kind dir>/cnp-conformance/<time>)")
    parser.add_argument("--kind-dir", type=Path, default=Path(KIND_DIR), help="the kind tier's run directory")
    parser.add_argument("--timeout-minutes", type=int, default=60)
    parser.add_argument("--features", default=",".join(netpolapi.FEATURES),
                        help="--supported-features for the suite (default: %(default)s)")
    opts = parser.parse_args(list(argv))
    for flag, value in (("--run", opts.run), ("--skip", opts.skip)):
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                parser.error(f"{flag} is not a regular expression: {exc}")
    run = subset_run(CI_SUBSET) if opts.subset else (opts.run or f"^{TOP}$")
    report_dir = opts.report_dir or opts.kind_dir / "cnp-conformance" / time.strftime("%Y%m%dT%H%M%S")
    return Settings(run, opts.skip, report_dir, opts.kind_dir, KIND_NETNS, KIND_CLUSTER, opts.timeout_minutes,
                    tuple(f for f in opts.features.split(",") if f))


def suite_argv(s: Settings, test2json: Path, binary: Path) -> list[str]:
    """The whole command: the unmodified test binary under test2json, in the engine's netns, with the kubeconfig."""
    from picket_lab import netpolapi

    argv = netpolapi.conformance_argv(binary, s.report, s.features)
    argv[argv.index("-test.run") + 1] = s.run
    argv[argv.index("-test.timeout") + 1] = f"{s.timeout_minutes}m"
    argv[argv.index("-test.v")] = "-test.v=test2json"
    if s.skip:
        argv[1:1] = ["-test.skip", s.skip]
    return ["ip", "netns", "exec", s.netns, "env", f"KUBECONFIG={s.kubeconfig}",
            str(test2json), "-t", "-p", "cnp-conformance", *argv]


# -- the operator restart ---------------------------------------------------------------------------

def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def established_at(crd: dict[str, Any]) -> datetime | None:
    for cond in crd.get("status", {}).get("conditions", []):
        if cond.get("type") == "Established" and cond.get("status") == "True" and cond.get("lastTransitionTime"):
            return _time(cond["lastTransitionTime"])
    return None


def operator_needs_restart(crd: dict[str, Any], pods: dict[str, Any]) -> bool:
    """True when some operator pod may not watch ClusterNetworkPolicies: it started before the CRD
    was established (kopf only watches the kinds whose CRD exists at its start), or we cannot tell."""
    established = established_at(crd)
    items = pods.get("items", [])
    if established is None or not items:
        return True
    for pod in items:
        started = pod.get("status", {}).get("startTime")
        if not started or _time(started) <= established:
            return True
    return False


# -- the results ------------------------------------------------------------------------------------

@dataclass
class TestResult:
    name: str  # "CNPAdminTierEgressTCP" or "CNPAdminTierEgressTCP/Should_support_..."
    status: str = "running"  # passed | failed | skipped | running (never finished: the binary died)
    seconds: float = 0.0
    output: list[str] = field(default_factory=list)

    @property
    def top(self) -> bool:
        return "/" not in self.name


def parse_events(lines: Iterable[str]) -> tuple[list[TestResult], list[str]]:
    """test2json events -> the results of every test and subtest under ``TestConformanceProfiles`` (in
    order of start) and the output of the top test itself (its setup: base manifests, readiness)."""
    found: dict[str, TestResult] = {}
    top_output: list[str] = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        test = event.get("Test") or ""
        if test == TOP:
            if event.get("Action") == "output":
                top_output.append(event.get("Output", ""))
            continue
        if not test.startswith(TOP + "/"):
            continue
        name = test[len(TOP) + 1:]
        result = found.setdefault(name, TestResult(name))
        action = event.get("Action")
        if action == "output":
            result.output.append(event.get("Output", ""))
        elif action in ("pass", "fail", "skip"):
            result.status = {"pass": "passed", "fail": "failed", "skip": "skipped"}[action]
            result.seconds = float(event.get("Elapsed") or 0.0)
    return list(found.values()), top_output


_FAILED_COMMAND = re.compile(r"FAILED Command was \[/agnhost connect --timeout=\S+ --protocol=(\w+) (\S+):(\d+)\]")
_SKIP_MESSAGE = re.compile(r"^\s*\S+\.go:\d+: (Skipping .*)$")


@dataclass(frozen=True)
class Probe:
    protocol: str
    target: str
    port: int


def failed_probe(result: TestResult) -> Probe | None:
    """The probe a failed (sub)test gave up on: the last ``FAILED Command was`` of its output."""
    found = [_FAILED_COMMAND.search(line) for line in result.output]
    last = [m for m in found if m]
    if not last:
        return None
    m = last[-1]
    return Probe(m.group(1), m.group(2), int(m.group(3)))


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    node: str
    ip: str
    host_network: bool


def placement(pod_list: dict[str, Any]) -> list[Pod]:
    pods = []
    for item in pod_list.get("items", []):
        meta, spec, status = item.get("metadata", {}), item.get("spec", {}), item.get("status", {})
        pods.append(Pod(meta.get("namespace", ""), meta.get("name", ""), spec.get("nodeName", ""),
                        status.get("podIP", ""), bool(spec.get("hostNetwork"))))
    return pods


_CLIENT = re.compile(r"Expected connection to (?:succeed|fail|be dropped) from ([\w-]+)/([\w-]+) to")


_API_DOWN = re.compile(r'(?:Get|Post|Delete|Patch|Put) "https://[^"]+": dial tcp [^:]+:\d+: '
                       r'connect: connection refused')


def failure_reason(result: TestResult, pods: Sequence[Pod]) -> str:
    """Why a failed subtest failed, in one line, with the evidence the log and the pods' placement give."""
    text = "".join(result.output)
    if _API_DOWN.search(text):
        return "the API server stopped answering (connection refused): the kind cluster went away during the run"
    probe = failed_probe(result)
    if probe is None:
        lines = [ln.strip() for ln in result.output if "Error:" in ln or "error" in ln]
        return lines[0] if lines else "no failed probe in the log (see the events file)"
    last = text.split("FAILED Command was")[-1]
    client = _CLIENT.findall(text)
    where = f"{client[-1][0]}/{client[-1][1]}" if client else "?"
    other = re.search(r"returned a different status: (.*)", last)
    got = ("connected, must be denied" if "successfully connected" in last else
           "no connection, must connect" if "miserably failed" in last else
           f"failed with {other.group(1).strip()!r}, must time out (be dropped)" if other else "a wrong answer")
    line = f"{probe.protocol} {where} -> {probe.target}:{probe.port}: {got}"
    if probe.protocol == "sctp":
        return f"{line} [SCTP: {SCTP_REASON}]"
    by_ip = {p.ip: p for p in pods if p.ip}
    target = by_ip.get(probe.target)
    source = next((p for p in pods if f"{p.namespace}/{p.name}" == where), None)
    if target is not None and target.host_network and source is not None and source.node == target.node:
        return (f"{line} [the client and the host-network server share node {source.node}: the connection "
                f"is delivered locally, PICKET-INPUT runs the pod's egress rules]")
    if target is not None and source is not None:
        return f"{line} [client on {source.node}, server {target.namespace}/{target.name} on {target.node}]"
    return line


def skip_reason(result: TestResult, skip: str) -> str:
    for line in result.output:
        m = _SKIP_MESSAGE.match(line)
        if m:
            return m.group(1)
    if skip == SCTP_SKIP and result.name.endswith("SCTP"):
        return SCTP_REASON
    return "skipped"


@dataclass(frozen=True)
class Summary:
    passed: int
    failed: int
    skipped: int
    subtests_passed: int
    subtests_failed: int

    def line(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"


def summarise(results: Sequence[TestResult]) -> Summary:
    tops = [r for r in results if r.top]
    subs = [r for r in results if not r.top]
    return Summary(sum(r.status == "passed" for r in tops), sum(r.status in ("failed", "running") for r in tops),
                   sum(r.status == "skipped" for r in tops), sum(r.status == "passed" for r in subs),
                   sum(r.status in ("failed", "running") for r in subs))


def skipped_by_flag(names: Sequence[str], results: Sequence[TestResult], skip: str) -> list[TestResult]:
    """Tests ``-test.skip`` removed (Go reports nothing for them): listed as skipped, with the reason."""
    if not skip:
        return []
    ran = {r.name for r in results}
    pattern = re.compile(skip.split("/", 1)[1] if skip.startswith(f"^{TOP}$/") else skip)
    return [TestResult(n, "skipped") for n in names if n not in ran and pattern.search(n)]


def result_lines(results: Sequence[TestResult], pods: Sequence[Pod], skip: str) -> list[str]:
    lines = []
    subs: dict[str, list[TestResult]] = {}
    for r in results:
        if not r.top:
            subs.setdefault(r.name.split("/")[0], []).append(r)
    for r in sorted((r for r in results if r.top), key=lambda r: r.name):
        tag = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "running": "FAIL"}[r.status]
        line = f"{tag} {r.seconds:6.1f}s  {r.name}"
        if r.status == "skipped":
            line += f"  ({skip_reason(r, skip)})"
        elif r.status == "running":
            line += "  (never finished: the binary stopped)"
        elif r.status == "failed" and not any(sub.status != "passed" for sub in subs.get(r.name, [])):
            line += f"  ({failure_reason(r, pods)})"
        lines.append(line)
        for sub in subs.get(r.name, []):
            if sub.status in ("failed", "running"):
                lines.append(f"       FAIL {sub.name.split('/', 1)[1].replace('_', ' ')}: {failure_reason(sub, pods)}")
    return lines


TEST_NAMES = (
    "CNPAdminTierEgressNamedPort", "CNPAdminTierEgressNodePeers", "CNPAdminTierIngressNamedPort",
    "CNPAdminTierEgressInlineCIDRPeers", "CNPAdminTierEgressSCTP", "CNPAdminTierEgressTCP", "CNPAdminTierEgressUDP",
    "CNPAdminTierGress", "CNPAdminTierIngressSCTP", "CNPAdminTierIngressTCP", "CNPAdminTierIngressUDP",
    "CNPAdminTierIntegration", "CNPAdminTierPriorityField", "CNPBaselineTierEgressNamedPort",
    "CNPBaselineTierEgressNodePeers", "CNPBaselineTierIngressNamedPort", "CNPBaselineTierEgressInlineCIDRPeers",
    "CNPBaselineTierEgressSCTP", "CNPBaselineTierEgressTCP", "CNPBaselineTierEgressUDP", "CNPBaselineTierGress",
    "CNPBaselineTierIngressSCTP", "CNPBaselineTierIngressTCP", "CNPBaselineTierIngressUDP",
)  # tests.ConformanceTests of v0.2.0 (the kind test checks them against the binary's -test.list)


# -- the run ----------------------------------------------------------------------------------------

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, flush=True)


class _Cluster:
    def __init__(self, s: Settings) -> None:
        self.s = s

    def kubectl(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = ["ip", "netns", "exec", self.s.netns, str(self.s.kubectl), f"--kubeconfig={self.s.kubeconfig}", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()[-1500:]}")
        return proc

    def json(self, *args: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.kubectl(*args, "-o", "json").stdout)
        return out


def install_crd(c: _Cluster, say: Say) -> None:
    from picket_lab import netpolapi

    crd = netpolapi.crd_file("experimental")
    c.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    c.kubectl("wait", "--for=condition=established", "--timeout=60s", f"crd/{netpolapi.CRD_NAME}")
    say(f"cnp-conformance: CRD {netpolapi.CRD_NAME} from {netpolapi.MODULE}@{netpolapi.VERSION} "
        f"(config/crd/experimental) installed")
    crd_obj = c.json("get", "crd", netpolapi.CRD_NAME)
    pods = c.json("-n", OPERATOR[0], "get", "pods", "-l", OPERATOR_SELECTOR)
    if operator_needs_restart(crd_obj, pods):
        say("cnp-conformance: an operator replica started before the CRD: restarting the operator")
        c.kubectl("-n", OPERATOR[0], "rollout", "restart", f"deployment/{OPERATOR[1]}")
        c.kubectl("-n", OPERATOR[0], "rollout", "status", f"deployment/{OPERATOR[1]}", "--timeout=300s", timeout=330)
    else:
        say("cnp-conformance: the operator started after the CRD: no restart needed")


def ensure_image(s: Settings, say: Say) -> None:
    import hashlib
    import shutil
    import tempfile

    from picket_lab.kind import e2ebuild, e2eimages, images
    from picket_lab.kind.layout import layout

    tools = e2ebuild.ensure_e2e_tools(say)
    agnhost = tools.paths.binary("agnhost")
    docker = e2eimages.docker_client(s.docker_host)
    nodes = e2eimages.kind_nodes(docker, s.cluster)
    base = images.BUSYBOX_STANDIN
    if docker("image", "inspect", base, check=False).returncode != 0:
        images.ensure_busybox_standin(layout(), say)
    base_id = docker("image", "inspect", base, "--format", "{{.Id}}").stdout.decode().strip()
    stamp = hashlib.sha256(agnhost.read_bytes() + WRAPPER.encode() + base_id.encode()).hexdigest()[:32]
    inspect = docker("image", "inspect", AGNHOST_REF, "--format", f'{{{{index .Config.Labels "{IMAGE_LABEL}"}}}}',
                     check=False)
    built = inspect.returncode != 0 or inspect.stdout.decode().strip() != stamp
    if built:
        with tempfile.TemporaryDirectory(prefix="picket-cnp-ctx-") as tmp:
            ctx = Path(tmp)
            (ctx / "Dockerfile").write_text(agnhost_dockerfile(base, stamp))
            shutil.copy2(agnhost, ctx / "agnhost")
            (ctx / "agnhost.sh").write_text(WRAPPER)
            (ctx / "agnhost.sh").chmod(0o755)
            docker("build", "-q", "-t", AGNHOST_REF, str(ctx))
    image_id = docker("image", "inspect", AGNHOST_REF, "--format", "{{.Id}}").stdout.decode().strip()
    loaded = e2eimages.load_into_nodes(docker, AGNHOST_REF, image_id, nodes)
    say(f"cnp-conformance: {AGNHOST_REF} {'built' if built else 'cached'} (agnhost {tools.paths.kubernetes} from "
        f"source on {base}), loaded into {', '.join(loaded) or 'no node (all had it)'}")


def tier_up(s: Settings) -> bool:
    from picket_lab.kind import e2eimages

    if not Path(s.docker_host[len("unix://"):]).exists() or not s.kubeconfig.exists():
        return False
    try:
        return bool(e2eimages.kind_nodes(e2eimages.docker_client(s.docker_host, timeout=60), s.cluster))
    except Exception:  # any failure to reach the engine means: not up
        return False


def test2json_path() -> Path:
    from picket_lab import netpolapi

    proc = subprocess.run([netpolapi.go_binary(), "tool", "-n", "test2json"], capture_output=True, text=True,
                          check=True, timeout=120)
    return Path(proc.stdout.strip())


def main(argv: Sequence[str] | None = None) -> int:
    from picket_lab import netpolapi
    from picket_lab.build import BuildError
    from picket_lab.kind import e2eimages

    s = parse_settings(sys.argv[1:] if argv is None else argv)
    if not tier_up(s):
        _say(f"cnp-conformance: the kind tier is not up (no nodes of cluster {s.cluster!r} behind {s.docker_host}, "
             f"or no {s.kubeconfig}); run 'picket kind up' (or scripts/cnp-conformance.sh) first")
        return 2
    try:
        began = time.monotonic()
        binary = netpolapi.build_conformance(netpolapi.conformance_dir())
        _say(f"cnp-conformance: suite {netpolapi.MODULE}@{netpolapi.VERSION} conformance built "
             f"({binary}, {time.monotonic() - began:.0f}s)")
        test2json = test2json_path()
        c = _Cluster(s)
        if c.kubectl("-n", OPERATOR[0], "get", f"deployment/{OPERATOR[1]}", check=False).returncode != 0:
            _say(f"cnp-conformance: picket is not deployed on the kind tier (no deployment {'/'.join(OPERATOR)}); "
                 "run 'picket kind up' first")
            return 2
        install_crd(c, _say)
        ensure_image(s, _say)
    except (BuildError, e2eimages.ImageError, RuntimeError, subprocess.SubprocessError) as exc:
        _say(f"cnp-conformance: {exc}")
        return 2
    return run_suite(s, c, test2json, binary, _say)


def run_suite(s: Settings, c: _Cluster, test2json: Path, binary: Path, say: Say) -> int:
    s.report_dir.mkdir(parents=True, exist_ok=True)
    argv = suite_argv(s, test2json, binary)
    say(f"cnp-conformance: running the suite (-test.run {s.run!r}, -test.skip {s.skip!r}); events: {s.events}")
    pods: list[Pod] = []
    stop = threading.Event()

    def watch_pods() -> None:  # where the suite's pods run, for the failure reasons (they are deleted at the end)
        selector = "conformance-house in (" + ",".join(HOUSES) + ")"
        while not stop.wait(15):
            try:
                found = placement(c.json("get", "pods", "-A", "-l", selector))
            except (RuntimeError, subprocess.SubprocessError, ValueError):
                continue
            if len(found) >= len(pods):
                pods[:] = found

    watcher = threading.Thread(target=watch_pods, daemon=True)
    watcher.start()
    began = time.monotonic()
    with open(s.events, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=s.report_dir)
        while True:
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                results, _ = parse_events(s.events.read_text(errors="replace").splitlines())
                done = sum(r.top and r.status != "running" for r in results)
                say(f"cnp-conformance:   ... {time.monotonic() - began:.0f}s, {done} test(s) finished")
    wall = time.monotonic() - began
    stop.set()
    (s.report_dir / "placement.json").write_text(json.dumps([p.__dict__ for p in pods], indent=1))
    results, top_output = parse_events(s.events.read_text(errors="replace").splitlines())
    if not any(r.top for r in results):
        say(f"cnp-conformance: no test ran (exit {proc.returncode}); the suite's setup said:")
        for line in [ln.rstrip() for ln in top_output if ln.strip()][-25:]:
            say(f"  {line}")
        return 1
    results += skipped_by_flag(TEST_NAMES, results, s.skip) if s.run == f"^{TOP}$" else []
    lines = result_lines(results, pods, s.skip)
    for line in lines:
        say(line)
    summary = summarise(results)
    tail = (f"(subtests: {summary.subtests_passed} passed, {summary.subtests_failed} failed; wall time {wall:.0f}s; "
            f"report: {s.report if s.report.exists() else '(none written)'}; events: {s.events})")
    say(f"{summary.line()} {tail}")
    (s.report_dir / "summary.txt").write_text("\n".join([*lines, f"{summary.line()} (wall time {wall:.0f}s)"]) + "\n")
    return 0 if summary.failed == 0 and summary.passed > 0 and proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
