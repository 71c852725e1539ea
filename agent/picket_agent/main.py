"""``picket agent``: enforce compiled rule sets on this node.

    picket agent --rules FILE [--once] [--node NAME] [--metrics-port N] [--resync-seconds S] [--log-drops]
    picket agent --print --rules FILE      # show the desired iptables-save/ipset text, touch nothing
    picket agent --cleanup                 # remove every picket chain, hook and ipset

With ``--rules`` the file (``picket compile --format json`` output) is the feed: applied at
start, re-read when it changes. Without it the agent runs in API mode: ``apifeed.run(settings,
loop, stop)`` (agent/picket_agent/apifeed.py, the operator's part) watches this node's compiled
objects, calls ``loop.submit`` and sets ``loop.on_applied`` for status. Exit leaves the rules in
place: a restarted agent diffs against them and converges without a gap.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from picket.model import ModelError
from picket_agent.loop import SyncLoop
from picket_agent.rulesfile import Feed, load_rules_file
from picket_agent.settings import AgentSettings, SettingsError, parse_settings

log = logging.getLogger("picket.agent")


def main(argv: Sequence[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        settings = parse_settings(argv, os.environ)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"picket agent: {problem}", file=sys.stderr)
        return 2
    if settings.print_only:
        return _print(settings)
    from picket_agent.kernel import backend
    detected = backend.choose(settings.iptables_backend)
    log.info("iptables backend: %s (%s); %s", detected.mode, detected.reason, detected.advice())
    log.info("host failsafe ports in %s, out %s", ",".join(settings.render.failsafe_inbound) or "none",
             ",".join(settings.render.failsafe_outbound) or "none")
    if settings.cleanup:
        return _cleanup(settings)
    loop = _make_loop(settings, detected.mode)
    if settings.once:
        assert settings.rules_file is not None
        if not _submit_file(loop, settings.rules_file):
            return 1
        return 0 if loop.sync().ok else 1
    return _serve(settings, loop)


def _make_loop(settings: AgentSettings, mode: str) -> SyncLoop:
    from picket_agent.kernel import families

    observer = None
    if settings.metrics_port:
        from picket_agent.metrics import Metrics

        observer = Metrics(settings)
    loop = SyncLoop(settings, families.build(settings.xtables_lock, mode), observer=observer)
    if observer is not None:
        observer.start(loop)
    return loop


def _submit_file(loop: SyncLoop, path: Path) -> bool:
    try:
        feed = load_rules_file(path)
    except (OSError, ModelError) as exc:
        log.error("rules file %s rejected: %s; the last good state stays enforced", path, exc)
        return False
    loop.submit(feed)
    return True


def _serve(settings: AgentSettings, loop: SyncLoop) -> int:
    stop = threading.Event()
    def _stop(*_: object) -> None:
        stop.set()
        loop.wake()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    workers: list[threading.Thread] = []
    # Always: audit mode's would-be drops are logged whether or not --log-drops logs the real ones.
    from picket_agent.kernel.droplog import DropLog

    workers.append(threading.Thread(target=DropLog(settings, loop).run, args=(stop,), daemon=True))
    if settings.rules_file is not None:
        workers.append(threading.Thread(target=_watch_file, args=(settings.rules_file, loop, stop), daemon=True))
    else:
        try:
            apifeed = importlib.import_module("picket_agent.apifeed")
        except ImportError:
            log.error("API mode is not available in this build; use --rules FILE")
            return 2
        workers.append(threading.Thread(target=apifeed.run, args=(settings, loop, stop), daemon=True))
        if settings.pod_network != "off":
            from picket_agent import podnetfeed

            workers.append(threading.Thread(target=podnetfeed.run, args=(settings, stop), daemon=True))
    for w in workers:
        w.start()
    loop.run(stop)
    log.info("stopping; the rules stay enforced")
    return 0


def _watch_file(path: Path, loop: SyncLoop, stop: threading.Event, interval: float = 1.0) -> None:
    seen: tuple[float, int] | None = None
    while not stop.is_set():
        try:
            st = path.stat()
            stamp = (st.st_mtime, st.st_size)
        except OSError:
            stamp = None
        if stamp is not None and stamp != seen:
            seen = stamp
            _submit_file(loop, path)
        stop.wait(interval)


def _print(settings: AgentSettings) -> int:
    from picket_agent.rendering.renderer import render

    if settings.rules_file is None:
        print("picket agent: --print needs --rules", file=sys.stderr)
        return 2
    try:
        feed: Feed = load_rules_file(settings.rules_file)
    except ModelError as exc:
        print(f"picket agent: {exc}", file=sys.stderr)
        return 1
    compiled = feed.compiled.for_node(settings.node) if settings.node else feed.compiled
    desired = render(compiled, settings.render)
    for problem in (*feed.problems, *desired.problems):
        print(f"# problem: {problem}")
    sys.stdout.write(desired.save_text())
    return 0


def _cleanup(settings: AgentSettings) -> int:
    """Every table picket may have written (both backends, both families), then every ipset."""
    from picket_agent.kernel.ipsets import IpsetIO
    from picket_agent.kernel.iptables import DataplaneError, IptablesIO
    from picket_agent.kernel.migration import LegacyLeftovers
    from picket_agent.kernel.restore import RestoreTables
    from picket_agent.rendering import naming

    chains = 0
    failed = False
    if LegacyLeftovers(settings.xtables_lock).present():
        chains += IptablesIO(settings.xtables_lock).remove_everything()
    for mode, family in (("nft", 4), ("nft", 6), ("legacy", 6)):
        try:
            chains += RestoreTables(family, mode, settings.xtables_lock).remove_everything()
        except DataplaneError as exc:
            log.error("cleanup of %s IPv%d: %s", mode, family, exc)
            failed = True
    destroyed = 0
    for family in (4, 6):
        sets = IpsetIO(family)
        owned = list(sets.list_owned())
        refused = sets.destroy_quietly(owned)
        destroyed += len(owned) - len(refused)
        failed = failed or bool(refused)
    log.info("cleanup: removed %d chains and %d ipsets (prefixes %s, %s)", chains, destroyed,
             naming.CHAIN_PREFIX, naming.SET_PREFIX)
    return 1 if failed else 0
