"""The ``picket`` command: a thin dispatcher to each part's own command module.

Each subcommand lives with the code it drives and owns its argument parsing; this module only
maps the first word to ``module:function(argv) -> exit code`` and imports lazily, so that
``picket compile`` never loads kopf and ``picket lab`` never loads iptables bindings. The local
cluster's commands (``lab``, ``demo``, ``matrix --live``) live in the separate ``picket_lab``
distribution, installed from a checkout by ``scripts/setup.sh`` and absent from the image.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence

COMMANDS: dict[str, tuple[str, str, str]] = {
    "compile": ("picket_operator.commands.compile", "compile_main", "print the compiled rule sets of a cluster file"),
    "matrix": ("picket_operator.commands.matrix", "main",
               "who can reach whom (offline from a cluster file, or --live)"),
    "explain": ("picket_operator.commands.explain", "main",
                "why SRC can or cannot reach DST on a port (which policy and rule, per direction)"),
    "ui": ("picket_operator.ui.command", "main",
           "the network-policy workbench in your browser (--cluster FILE offline, or your kubeconfig)"),
    "convert": ("picket_operator.commands.convert", "convert_main",
                "convert v1beta1 NetworkPolicies to networking.k8s.io/v1"),
    "lab": ("picket_lab.command", "main", "the local cluster: up, down, status, kubectl, exec, ..."),
    "kind": ("picket_lab.kind.command", "main", "a real kind cluster with picket deployed: up, down, status, shell"),
    "agent": ("picket_agent.main", "main", "the node agent (from the API, or --rules FILE)"),
    "operator": ("picket_operator.main", "main", "the kopf operator"),
    "demo": ("picket_lab.demo", "main", "bring up the local cluster and watch policies drop packets"),
}

LIVE_MATRIX = ("picket_lab.live", "live_main", "")  # `picket matrix --live`: probes on the local cluster
LAB_UI = ("picket_lab.uiprobe", "main", "")  # `picket ui` with the local cluster's probes (picket-lab installed)


def _usage() -> str:
    lines = ["usage: picket COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] not in COMMANDS:
        print(f"picket: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = LIVE_MATRIX if args[0] == "matrix" and "--live" in args else COMMANDS[args[0]]
    if args[0] == "ui" and importlib.util.find_spec("picket_lab") is not None:
        module_name, func_name, _ = LAB_UI
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != "picket_lab":
            raise
        print(f"picket {args[0]}: the local cluster (picket-lab) is not installed here; it is a development tool:\n"
              "  run 'bash scripts/setup.sh' in a checkout of picket (it installs lab/ beside picket)", file=sys.stderr)
        return 2
    func: Callable[[list[str]], int] = getattr(module, func_name)
    return func(args[1:])


if __name__ == "__main__":
    sys.exit(main())
