"""The only code that touches the kernel: iptables (``iptables``, ``entries``, ``tableblob``), ipsets
(``ipsets``, ``ipsetwire``), the backend probe (``backend``), NFLOG (``droplog``) and the applier that drives them.
"""
