"""picket ui: the network-policy workbench served to a local browser (see server.py)."""
