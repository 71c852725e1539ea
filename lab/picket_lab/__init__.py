"""The local cluster ("lab"): a real control plane built from Go sources, nodes as network namespaces.

``build`` compiles and caches the binaries, ``pki`` makes the certificates, ``controlplane`` runs
etcd and the Kubernetes components, ``network`` owns namespaces and links, ``noderuntime`` plays
kubelet and CNI, ``command`` is ``picket lab ...`` and ``api`` is the Python ``Lab`` used by tests.
"""
