"""Reading a "cluster file": multi-document YAML of Namespace, Pod and policy objects.

``load_cluster_file(path)`` returns the objects in file order; ``kind: List`` documents are
expanded into their ``items`` and empty documents skipped. A file that is not YAML, or a document
that is not an object, raises ``ClusterFileError`` naming the file and document number. Whether
each object makes sense is the compiler's business (it reports ``Problem``s). Used by
``picket compile``, ``picket matrix`` and the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ClusterFileError(ValueError):
    """The cluster file cannot be read as YAML objects."""


def load_cluster_file(path: str | Path) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ClusterFileError(f"{path}: {exc.strerror or exc}") from exc
    return parse_cluster_text(text, str(path))


def parse_cluster_text(text: str, source: str = "<cluster file>") -> list[dict[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ClusterFileError(f"{source}: not valid YAML: {exc}") from exc
    objects: list[dict[str, Any]] = []
    for number, doc in enumerate(documents, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ClusterFileError(f"{source}: document {number} is not an object")
        if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List"):
            items = doc.get("items") or []
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ClusterFileError(f"{source}: document {number}: items must be a list of objects")
            objects.extend(items)
        else:
            objects.append(doc)
    return objects
