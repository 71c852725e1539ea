"""The policy compiler: pure. Raw policies, namespaces and pods in; ``picket.model`` rule sets and peer sets out.

``frontends/`` translate each policy kind into the IR (``ir``); ``compiling`` is the full compile,
``incremental`` the event-driven one; ``planning``, ``indexing``, ``views`` and ``selectors`` are their parts.
No kopf, no API client, no kernel, no clock (checked by import-linter).
"""
