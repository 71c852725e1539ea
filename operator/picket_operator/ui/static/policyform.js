// The editor's pure logic: the form's state <-> a networking.k8s.io/v1 NetworkPolicy object.
//
// The form holds what seed 004's form shows (ID Name, Description, Pod Selector labels and
// expressions, Policy Types Default / Ingress / Egress, ingress and egress rules with ports and
// sources / destinations), as strings, exactly as typed. `formToPolicy` writes the object the API
// server takes; `policyToForm` reads one back (the YAML view's direction). Anything the form has
// no field for is kept aside and written back unchanged, so nothing the user wrote is lost.
// Each form field knows its JSON path (`pathOf`), so the server's problems land beside it.
// No DOM here: unit-tested with `node --test tests/ui/js/`.

export const DESCRIPTION = "picket.dev/description";
export const OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"];
export const PROTOCOLS = ["TCP", "UDP", "SCTP"];

export function emptySelector() {
  return { labels: [], expressions: [] };
}

export function emptyPeer() {
  return { allNamespaces: false, namespaceSelector: null, allPods: false, podSelector: null, ipBlock: null };
}

export function emptyRule() {
  return { ports: [], peers: [], extra: {} };
}

export function emptyPort() {
  return { port: "", endPort: "", protocol: "TCP" };
}

export function emptyForm(namespace) {
  return {
    name: "", namespace: namespace || "default", description: "",
    podSelector: emptySelector(),
    types: { default: true, ingress: false, egress: false },
    ingress: [], egress: [],
    extraMeta: {}, extraSpec: {},
  };
}

// --- selectors -------------------------------------------------------------------------------

export function selectorToK8s(sel) {
  const out = {};
  if (sel.labels.length) {
    out.matchLabels = {};
    for (const { key, value } of sel.labels) out.matchLabels[key.trim()] = value.trim();
  }
  if (sel.expressions.length) {
    out.matchExpressions = sel.expressions.map(({ key, operator, values }) => {
      const expr = { key: key.trim(), operator };
      if (operator === "In" || operator === "NotIn") {
        expr.values = splitList(values);
      }
      return expr;
    });
  }
  return out;
}

export function selectorFromK8s(raw) {
  const sel = emptySelector();
  if (!raw || typeof raw !== "object") return sel;
  for (const [key, value] of Object.entries(raw.matchLabels || {})) sel.labels.push({ key, value: String(value) });
  for (const e of raw.matchExpressions || []) {
    sel.expressions.push({ key: e.key || "", operator: e.operator || "In", values: (e.values || []).join(", ") });
  }
  return sel;
}

export function isEmptySelector(raw) {
  return !raw || (Object.keys(raw.matchLabels || {}).length === 0 && (raw.matchExpressions || []).length === 0);
}

export function splitList(text) {
  return String(text || "").split(",").map((v) => v.trim()).filter((v) => v !== "");
}

// --- peers, ports, rules ---------------------------------------------------------------------

export function peerToK8s(peer) {
  const out = {};
  if (peer.allNamespaces) out.namespaceSelector = {};
  else if (peer.namespaceSelector) out.namespaceSelector = selectorToK8s(peer.namespaceSelector);
  if (peer.allPods) out.podSelector = {};
  else if (peer.podSelector) out.podSelector = selectorToK8s(peer.podSelector);
  if (peer.ipBlock) {
    out.ipBlock = { cidr: peer.ipBlock.cidr.trim() };
    const except = splitList(peer.ipBlock.except);
    if (except.length) out.ipBlock.except = except;
  }
  return out;
}

export function peerFromK8s(raw) {
  const peer = emptyPeer();
  if (!raw || typeof raw !== "object") return peer;
  if (raw.namespaceSelector !== undefined && raw.namespaceSelector !== null) {
    if (isEmptySelector(raw.namespaceSelector)) peer.allNamespaces = true;
    else peer.namespaceSelector = selectorFromK8s(raw.namespaceSelector);
  }
  if (raw.podSelector !== undefined && raw.podSelector !== null) {
    if (isEmptySelector(raw.podSelector)) peer.allPods = true;
    else peer.podSelector = selectorFromK8s(raw.podSelector);
  }
  if (raw.ipBlock) peer.ipBlock = { cidr: raw.ipBlock.cidr || "", except: (raw.ipBlock.except || []).join(", ") };
  return peer;
}

export function portToK8s(p) {
  const out = {};
  const text = String(p.port).trim();
  if (text !== "") out.port = /^\d+$/.test(text) ? Number(text) : text;
  const end = String(p.endPort || "").trim();
  if (end !== "") out.endPort = /^\d+$/.test(end) ? Number(end) : end;
  out.protocol = p.protocol || "TCP";
  return out;
}

export function portFromK8s(raw) {
  return {
    port: raw && raw.port !== undefined ? String(raw.port) : "",
    endPort: raw && raw.endPort !== undefined ? String(raw.endPort) : "",
    protocol: (raw && raw.protocol) || "TCP",
  };
}

function ruleToK8s(rule, peersField) {
  const out = { ...rule.extra };
  if (rule.ports.length) out.ports = rule.ports.map(portToK8s);
  if (rule.peers.length) out[peersField] = rule.peers.map(peerToK8s);
  return out;
}

function ruleFromK8s(raw, peersField) {
  const rule = emptyRule();
  if (!raw || typeof raw !== "object") return rule;
  for (const [k, v] of Object.entries(raw)) {
    if (k === "ports") rule.ports = (v || []).map(portFromK8s);
    else if (k === peersField) rule.peers = (v || []).map(peerFromK8s);
    else rule.extra[k] = v;
  }
  return rule;
}

// --- the whole policy ------------------------------------------------------------------------

export function policyTypes(types) {
  if (types.default || (!types.ingress && !types.egress)) return null;
  const out = [];
  if (types.ingress) out.push("Ingress");
  if (types.egress) out.push("Egress");
  return out;
}

export function formToPolicy(form) {
  const annotations = { ...(form.extraMeta.annotations || {}) };
  if (form.description.trim()) annotations[DESCRIPTION] = form.description.trim();
  else delete annotations[DESCRIPTION];
  const metadata = { name: form.name.trim(), namespace: form.namespace };
  if (form.extraMeta.labels && Object.keys(form.extraMeta.labels).length) metadata.labels = form.extraMeta.labels;
  if (Object.keys(annotations).length) metadata.annotations = annotations;
  const spec = { podSelector: selectorToK8s(form.podSelector) };
  const types = policyTypes(form.types);
  if (types) spec.policyTypes = types;
  if (form.ingress.length) spec.ingress = form.ingress.map((r) => ruleToK8s(r, "from"));
  if (form.egress.length) spec.egress = form.egress.map((r) => ruleToK8s(r, "to"));
  Object.assign(spec, form.extraSpec);
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata, spec };
}

export function policyToForm(policy) {
  const form = emptyForm();
  const meta = policy.metadata || {};
  const spec = policy.spec || {};
  form.name = meta.name || "";
  form.namespace = meta.namespace || "default";
  const annotations = { ...(meta.annotations || {}) };
  form.description = annotations[DESCRIPTION] || "";
  delete annotations[DESCRIPTION];
  form.extraMeta = {};
  if (Object.keys(annotations).length) form.extraMeta.annotations = annotations;
  if (meta.labels && Object.keys(meta.labels).length) form.extraMeta.labels = { ...meta.labels };
  form.podSelector = selectorFromK8s(spec.podSelector);
  const types = Array.isArray(spec.policyTypes) ? spec.policyTypes : [];
  form.types = types.length
    ? { default: false, ingress: types.includes("Ingress"), egress: types.includes("Egress") }
    : { default: true, ingress: false, egress: false };
  form.ingress = (spec.ingress || []).map((r) => ruleFromK8s(r, "from"));
  form.egress = (spec.egress || []).map((r) => ruleFromK8s(r, "to"));
  form.extraSpec = {};
  for (const [k, v] of Object.entries(spec)) {
    if (!["podSelector", "policyTypes", "ingress", "egress"].includes(k)) form.extraSpec[k] = v;
  }
  return form;
}

// Policy Types: "Default" excludes the others; choosing Ingress or Egress clears Default; none = Default.
export function setType(types, which, checked) {
  const next = { ...types, [which]: checked };
  if (which === "default" && checked) return { default: true, ingress: false, egress: false };
  if (which !== "default" && checked) next.default = false;
  if (!next.ingress && !next.egress) next.default = true;
  return next;
}

// The effective directions, as the API server defaults policyTypes.
export function effectiveTypes(policy) {
  const spec = policy.spec || {};
  if (Array.isArray(spec.policyTypes) && spec.policyTypes.length) return spec.policyTypes.slice();
  return (spec.egress || []).length ? ["Ingress", "Egress"] : ["Ingress"];
}

// The context menu's "Disable ingress/egress": leave the direction out of Policy Types, keep its
// rules. If the other direction was not enforced yet, it becomes enforced: give it an empty rule
// (allow all) when it has none, as seed 004 advises, so that disabling one never denies the other.
export function disableDirection(policy, direction) {
  const copy = JSON.parse(JSON.stringify(policy));
  const spec = copy.spec || (copy.spec = {});
  const other = direction === "Ingress" ? "Egress" : "Ingress";
  const otherField = other.toLowerCase();
  const had = effectiveTypes(copy);
  if (!had.includes(direction)) return { policy: copy, changed: false, note: `${direction} is already disabled` };
  spec.policyTypes = [other];
  let note = `${direction} rules kept but disabled (Policy Types: ${other} only)`;
  if (!had.includes(other) && !(spec[otherField] || []).length) {
    spec[otherField] = [{}];
    note += `; an empty ${otherField} rule allows all ${otherField} traffic`;
  }
  return { policy: copy, changed: true, note };
}

export function duplicatePolicy(policy, existingNames) {
  const copy = JSON.parse(JSON.stringify(policy));
  const base = `${copy.metadata.name}-copy`;
  let name = base;
  for (let i = 2; existingNames.includes(name); i++) name = `${base}-${i}`;
  copy.metadata.name = name;
  return copy;
}

// --- paths: where a problem about a JSON path is shown ---------------------------------------

// The input whose path is the longest prefix of `field` ("spec.ingress[0].ports[1].port").
export function bestPath(field, paths) {
  let best = null;
  for (const p of paths) {
    if (field === p || field.startsWith(p + ".") || field.startsWith(p + "[")) {
      if (best === null || p.length > best.length) best = p;
    }
  }
  return best;
}

// Read and write the form state by a dotted path ("ingress.0.ports.1.port").
export function getAt(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

export function setAt(obj, path, value) {
  const keys = path.split(".");
  const last = keys.pop();
  const target = keys.reduce((o, k) => o[k], obj);
  target[last] = value;
}

// Grouping for the matrix: items with the same namespace go under one header.
export function byNamespace(items) {
  const out = [];
  for (const item of items) {
    const ns = item.namespace || "hosts";
    if (!out.length || out[out.length - 1].namespace !== ns) out.push({ namespace: ns, items: [] });
    out[out.length - 1].items.push(item);
  }
  return out;
}
