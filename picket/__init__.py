"""picket: a Kubernetes NetworkPolicy enforcer you can watch work."""

__version__ = "0.1.0"
