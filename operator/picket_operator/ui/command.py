"""``picket ui [--cluster FILE | --kubeconfig PATH] [--host 127.0.0.1] [--port 8765]``.

Offline with ``--cluster FILE``; otherwise the cluster of the user's kubeconfig (``--kubeconfig``,
``$KUBECONFIG``, ``~/.kube/config``, then the local cluster's). ``main(argv, prober=...)`` is also
the entry of ``picket_lab.uiprobe``, which plugs in the local cluster's probes. Serves until
interrupted; prints the URL.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from picket_operator.ui.server import Prober, UiServer


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="picket ui", description="The network-policy workbench, in your browser.")
    p.add_argument("--cluster", help="a cluster file: work offline (changes stay in memory)")
    p.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, then the local cluster's")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="0: any free port")
    p.add_argument("--failsafe-inbound", help="host failsafe ports, e.g. tcp:22,udp:68 (default: Calico's)")
    p.add_argument("--failsafe-outbound", help="host failsafe ports, e.g. udp:53 (default: Calico's)")
    return p


def build_server(argv: Sequence[str], prober: Prober | None = None) -> UiServer:
    args = parser().parse_args(list(argv))
    from picket.failsafe import parse_failsafe
    from picket_operator.ui.server import serve
    from picket_operator.ui.store import ApiStore, FileStore

    failsafe = parse_failsafe(args.failsafe_inbound, args.failsafe_outbound)
    store: FileStore | ApiStore
    if args.cluster:
        store = FileStore.from_file(args.cluster, failsafe)
        prober = None  # probes need a live cluster
    else:
        from picket.apiclient import KubeClient
        from picket_operator.commands.explain import default_kubeconfig, live_objects

        path = default_kubeconfig(args.kubeconfig, os.environ.get("KUBECONFIG"))
        try:
            kube = KubeClient(path, user_agent="picket-ui")
        except Exception as exc:  # the kubernetes package's own ConfigException, a missing file, ...
            raise ValueError(f"cannot use the kubeconfig {path}: {exc} (or work offline with --cluster FILE)") from exc
        store = ApiStore(kube, live_objects, f"{kube.credentials.server} as the user of {path}", failsafe)
        store.workbench()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"picket ui: warning: listening on {args.host}: anyone who can reach it and read the page can act "
              "with your kubeconfig's rights", file=sys.stderr)
    return serve(store, args.host, args.port, prober)


def main(argv: Sequence[str], prober: Prober | None = None) -> int:
    from picket.apiclient import ApiError
    from picket_operator.commands.clusterfile import ClusterFileError

    try:
        server = build_server(argv, prober)
    except (ClusterFileError, ValueError, OSError, ApiError) as exc:
        print(f"picket ui: {exc}", file=sys.stderr)
        return 2
    print(f"picket ui: serving {server.store.identity} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0
