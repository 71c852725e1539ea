"""Placeholder: filled in by its issue (kept so the layer contracts have a module to check)."""
