"""Debian's Docker engine, run inside a network namespace of its own so the machine's network is never touched.

``start`` makes the namespace ``pkt-kind`` (loopback only: nothing in it can reach the machine's
network, and nothing of it appears in the machine's namespace), then runs
``ip netns exec pkt-kind sh -c <script>``: ``ip netns exec`` gives the process a private mount
namespace with a fresh /sys, which hides /sys/fs/cgroup, so the script first mounts the machine's
cgroup hierarchies again (the same controllers, ``name=systemd`` and cgroup2 where they were) and
then execs ``dockerd`` with iptables, ip6tables and masquerading off and its own data root, exec
root, pidfile and socket. Docker's bridges, rules and container mounts therefore live and die in
that namespace. When this machine's capability bounding set lacks CAP_SYS_RESOURCE (Docker asks for
every capability in ``--privileged`` containers, and kind nodes are privileged), a small runtime
wrapper drops it from the OCI config before calling runc; on other machines runc is used directly.

Dual-stack clusters (``picket kind up --ip-family dual``) need no daemon option either: dockerd's
``--ipv6``/``--fixed-cidr-v6`` concern only its default bridge, while kind puts its nodes on the
user-defined network ``kind``, which it creates with ``--ipv6`` and a ULA subnet itself (see
``cluster.py`` for an IPv4-only ``kind`` network left from before). With ip6tables off, creating that
network cannot fail on ip6tables; the engine's namespace has IPv6 enabled (a new namespace starts
with the kernel's IPv6 defaults).

``stop`` kills dockerd (TERM, then KILL), every process left in the namespace (found through
/proc/<pid>/ns/net, so a crashed run's leftovers are found without pidfiles), and deletes the
namespace. Called by ``cluster.py`` and ``picket kind``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from picket_lab.kind.layout import NETNS, KindError, Layout, run

Progress = Callable[[str], None]
CAP_SYS_RESOURCE = 24
APT_PACKAGES = ("docker.io", "debootstrap")
ENGINE_UNITS = ("docker.service", "docker.socket", "containerd.service")
DEBIAN_DOCKER = "/usr/bin/docker"


def bounding_set_lacks(cap: int, status: str | None = None) -> bool:
    """True when the capability is missing from this process's bounding set (/proc/self/status CapBnd)."""
    text = status if status is not None else Path("/proc/self/status").read_text()
    for line in text.splitlines():
        if line.startswith("CapBnd:"):
            return not (int(line.split()[1], 16) >> cap) & 1
    return False


def cgroup_mounts(mountinfo: str) -> list[tuple[str, str, str]]:
    """(fstype, options, mount point) of the cgroup hierarchies mounted under /sys/fs/cgroup."""
    found: list[tuple[str, str, str]] = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        point, fstype, super_opts = fields[4], tail[0], tail[2]
        if fstype not in ("cgroup", "cgroup2") or not point.startswith("/sys/fs/cgroup"):
            continue
        opts = [o for o in super_opts.split(",") if o not in ("rw", "ro")]
        if fstype == "cgroup":
            opts = [o for o in opts if o in _V1_OPTIONS or o.startswith("name=")]
        found.append((fstype, ",".join(opts), point))
    return found


_V1_OPTIONS = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "net_cls", "net_prio",
               "perf_event", "hugetlb", "rdma", "misc", "none", "noprefix"}


def cgroup_script(mounts: list[tuple[str, str, str]]) -> list[str]:
    """Shell lines that mount the hierarchies again inside the engine's mount namespace."""
    if any(point == "/sys/fs/cgroup" for _, _, point in mounts):  # a pure cgroup2 (or single) hierarchy
        return [f"mount -t {t} {('-o ' + o) if o else ''} {t} /sys/fs/cgroup".replace("  ", " ")
                for t, o, p in mounts if p == "/sys/fs/cgroup"]
    lines = ["mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup"]
    for fstype, opts, point in mounts:
        lines.append(f"mkdir -p {point}")
        lines.append(f"mount -t {fstype} {('-o ' + opts + ' ') if opts else ''}{fstype} {point}")
    return lines


def runtime_wrapper_source(python: str, runc: str) -> str:
    return f'''#!{python}
"""Drop CAP_SYS_RESOURCE (missing from this machine's bounding set) from what runc is asked to apply:
the bundle's config.json ('create', 'run') or the process file ('exec --process'); then exec runc."""
import json, os, sys

CAP = "CAP_SYS_RESOURCE"


def option(args, names):
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            return args[i + 1]
        for n in names:
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def strip(path, inner):
    with open(path) as fh:
        doc = json.load(fh)
    caps = (doc.get("process", {{}}) if inner else doc).get("capabilities") or {{}}
    if any(CAP in v for v in caps.values()):
        for key, values in caps.items():
            caps[key] = [c for c in values if c != CAP]
        with open(path, "w") as fh:
            json.dump(doc, fh)


args = sys.argv[1:]
if "create" in args or "run" in args:
    bundle = option(args, ("--bundle", "-b"))
    if bundle:
        strip(os.path.join(bundle, "config.json"), True)
if "exec" in args:
    process = option(args, ("--process", "-p"))
    if process:
        strip(process, False)
os.execv({runc!r}, [{runc!r}, *args])
'''


def dockerd_argv(lay: Layout, wrapper: bool) -> list[str]:
    argv = ["dockerd", f"--data-root={lay.data_root}", f"--exec-root={lay.exec_root}", f"--pidfile={lay.pidfile}",
            f"-H={lay.docker_host}", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--storage-driver=overlay2", "--log-level=warn"]
    if wrapper:
        argv += [f"--add-runtime=picket-runc={lay.runtime_wrapper}", "--default-runtime=picket-runc"]
    return argv


def ensure_packages(progress: Progress) -> None:
    """docker.io and debootstrap from apt when missing; the units the packages enable are disabled."""
    missing = [p for p in APT_PACKAGES if run(["dpkg", "-s", p], check=False).returncode != 0]
    if missing:
        progress(f"kind: installing Debian packages {' '.join(missing)} (no service is started)")
        policy = Path("/usr/sbin/policy-rc.d")
        made_policy = not policy.exists()
        if made_policy:  # invoke-rc.d asks this file; 101 = do not start anything
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        try:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for argv in (["apt-get", "update", "-qq"],
                         ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
                proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise KindError(f"{' '.join(argv)} failed: {proc.stderr.strip()[-2000:]}")
        finally:
            if made_policy:
                policy.unlink()
    if shutil.which("systemctl"):
        for unit in ENGINE_UNITS:
            run(["systemctl", "disable", unit], check=False)


def netns_inode() -> int | None:
    try:
        return os.stat(f"/run/netns/{NETNS}").st_ino
    except FileNotFoundError:
        return None


def pids_in_netns(inode: int) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                found.append(int(entry))
    return found


def docker(lay: Layout, *args: str, check: bool = True, timeout: float | None = 600,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Docker's client, inside the engine's namespace (its socket is reachable from anywhere, but published
    ports listen on the namespace's loopback)."""
    return run(["ip", "netns", "exec", NETNS, DEBIAN_DOCKER, "-H", lay.docker_host, *args], check=check,
               timeout=timeout, stdin=stdin)


def healthy(lay: Layout) -> bool:
    if netns_inode() is None or not lay.socket.exists():
        return False
    try:
        return docker(lay, "info", "--format", "{{.ServerVersion}}", check=False, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start(lay: Layout, progress: Progress) -> None:
    """Start the engine (idempotent: a healthy engine is left alone; leftovers of a crashed one removed)."""
    if healthy(lay):
        return
    stop(lay)
    lay.run.mkdir(parents=True, exist_ok=True)
    lay.data_root.mkdir(parents=True, exist_ok=True)
    run(["ip", "netns", "add", NETNS])
    run(["ip", "-n", NETNS, "link", "set", "lo", "up"])
    wrapper = bounding_set_lacks(CAP_SYS_RESOURCE)
    if wrapper:
        runc = shutil.which("runc") or "/usr/sbin/runc"
        python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3") or "python3"
        lay.runtime_wrapper.write_text(runtime_wrapper_source(python, runc))
        lay.runtime_wrapper.chmod(0o755)
    script = [*cgroup_script(cgroup_mounts(Path("/proc/self/mountinfo").read_text())),
              'exec "$@"']
    progress(f"kind: starting dockerd in network namespace {NETNS}"
             f"{' (runtime wrapper: this machine lacks CAP_SYS_RESOURCE)' if wrapper else ''}; log: {lay.log}")
    with open(lay.log, "ab") as out:
        subprocess.Popen(["ip", "netns", "exec", NETNS, "sh", "-ec", "\n".join(script), "dockerd",
                          *dockerd_argv(lay, wrapper)],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                         env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    deadline = time.monotonic() + 60
    while not healthy(lay):
        if time.monotonic() > deadline:
            raise KindError(f"dockerd did not answer within 60 s; read {lay.log}")
        time.sleep(0.3)
    _link_clients(lay)


def _link_clients(lay: Layout) -> None:
    lay.bin_dir.mkdir(parents=True, exist_ok=True)
    link = lay.bin_dir / "docker"
    if not link.exists():
        link.symlink_to(DEBIAN_DOCKER)


def stop(lay: Layout, timeout: float = 20.0) -> None:
    """Stop dockerd and everything in its namespace, delete the namespace. Safe to call at any time."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(lay.pidfile.read_text().strip()), signal.SIGTERM)
    inode = netns_inode()
    if inode is not None:
        deadline = time.monotonic() + timeout
        while pids_in_netns(inode) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids_in_netns(inode):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pids_in_netns(inode) and time.monotonic() < deadline:
            time.sleep(0.1)
        run(["ip", "netns", "del", NETNS], check=False)
    for path in (lay.pidfile, lay.socket):
        path.unlink(missing_ok=True)
    if lay.exec_root.exists():
        shutil.rmtree(lay.exec_root, ignore_errors=True)
