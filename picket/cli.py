"""The ``picket`` command: a thin dispatcher to each part's own command module.

Each subcommand lives with the code it drives and owns its argument parsing; this module only
maps the first word to ``module:function(argv) -> exit code`` and imports lazily, so that
``picket compile`` never loads kopf and ``picket lab`` never loads iptables bindings.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

COMMANDS: dict[str, tuple[str, str, str]] = {
    "compile": ("picket_operator.tools", "compile_main", "print the compiled rule sets of a cluster file"),
    "matrix": ("picket.matrix_command", "main", "who can reach whom (offline from a cluster file, or --live)"),
    "convert": ("picket_operator.legacy", "convert_main", "convert v1beta1 NetworkPolicies to networking.k8s.io/v1"),
    "lab": ("picket.lab.command", "main", "the local cluster: up, down, status, kubectl, exec, ..."),
    "agent": ("picket_agent.main", "main", "the node agent (from the API, or --rules FILE)"),
    "operator": ("picket_operator.main", "main", "the kopf operator"),
    "demo": ("picket.demo", "main", "bring up the local cluster and watch policies drop packets"),
}


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
    module_name, func_name, _ = COMMANDS[args[0]]
    func: Callable[[list[str]], int] = getattr(importlib.import_module(module_name), func_name)
    return func(args[1:])


if __name__ == "__main__":
    sys.exit(main())
