"""The operator's offline commands: ``picket compile``, ``picket matrix`` (offline), ``picket convert``."""
