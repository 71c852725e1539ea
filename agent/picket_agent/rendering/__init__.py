"""The pure renderer: compiled rule sets in, the desired chains and ipsets (``desired.Desired``) out.

No kopf, no API client, no kernel library (checked by import-linter); ``naming`` owns every kernel name.
"""
