"""``picket convert FILE``: legacy extensions/v1beta1 NetworkPolicies (and DefaultDeny namespaces) to v1 YAML.

Reads the file (or standard input), hands the documents to the pure ``legacy.convert_documents``
and writes the result; warnings (namespaces left open, fields that could not be kept) go to
standard error, and any error makes the exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

from picket_operator.compiler.frontends.legacy import convert_documents


def convert_main(argv: Sequence[str]) -> int:
    """``picket convert FILE [--isolated-namespaces a,b] [-o OUT]``; writes v1 YAML."""
    parser = argparse.ArgumentParser(prog="picket convert", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("file", help="multi-document YAML ('-' for standard input)")
    parser.add_argument("--isolated-namespaces", default="", help="comma-separated namespaces isolated by DefaultDeny")
    parser.add_argument("-o", "--output", default="-", help="where to write the v1 YAML (default: standard output)")
    args = parser.parse_args(list(argv))
    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()  # noqa: SIM115
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        print(f"picket convert: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    if not all(isinstance(d, dict) for d in docs):
        print(f"picket convert: {args.file}: every document must be a mapping", file=sys.stderr)
        return 2
    flagged = [n.strip() for n in args.isolated_namespaces.split(",") if n.strip()]
    out, warnings = convert_documents(docs, flagged)
    for line in warnings:
        print(line, file=sys.stderr)
    rendered = yaml.safe_dump_all(out, sort_keys=False, explicit_start=True)
    if args.output == "-":
        sys.stdout.write(rendered)
    else:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(rendered)
    return 1 if any(w.startswith("error") for w in warnings) else 0
