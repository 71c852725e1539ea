"""Shared pytest set-up: the local-cluster fixture plugin and root checks."""

pytest_plugins: list[str] = ["picket_lab.pytest_plugin"]
