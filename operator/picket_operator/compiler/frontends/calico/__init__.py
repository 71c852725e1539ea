"""Calico-style policy support: the selector language (``selector``), the projectcalico.org/v3
frontend into the compiler's IR (``frontend``, ``scoped``), the staged kinds of audit mode through the
enforced kinds' frontends (``staged``), HostEndpoint / NetworkSet parsing and
the host rule-set frame with failsafe ports (``hosts``), built on pure modules with no kopf or I/O."""
