"""Policy frontends: one per policy kind, each a pure ``raw object -> ir.Translation``.

``networkpolicy`` (networking.k8s.io/v1), ``legacy`` (extensions/v1beta1 and namespace DefaultDeny),
``clusternetworkpolicy`` (policy.networking.k8s.io/v1alpha2),
``calico/`` (projectcalico.org/v3); ``registry`` maps apiVersion/kind to its frontend.
"""
