"""picket agent: renders compiled rule sets into iptables chains and ipsets on each node."""
