"""picket operator: the policy compiler and the kopf operator that publishes its output."""
