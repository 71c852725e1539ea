// picket ui: the pages (policies table, editor with YAML and live preview, matrix with explanations
// and probes). Vanilla JS, no build step, no third-party code; the pure logic lives in
// policyform.js (unit-tested). Every state-changing request carries the page's token.
import * as pf from "./policyform.js";

const TOKEN = document.querySelector('meta[name="picket-token"]').content;
const main = document.getElementById("main");
const statusBox = document.getElementById("status");
const app = { state: null, nav: 0, namespace: "", pending: null, expanded: new Set(), matrixPort: "", matrixProtocol: "TCP" };

// --- helpers ---------------------------------------------------------------------------------

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-Picket-Token": TOKEN },
  };
  const res = await fetch(path, init);
  let data = {};
  try { data = await res.json(); } catch (e) { data = { error: `${res.status} ${res.statusText}` }; }
  if (!res.ok) {
    const err = new Error(data.error || `${res.status}`);
    err.data = data;
    throw err;
  }
  return data;
}

function say(text) { statusBox.textContent = text; }

function fill(el, ...kids) { el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false)); }

function dialog(title, body, buttons) {
  const d = document.getElementById("dialog");
  document.getElementById("dialog-title").textContent = title;
  document.getElementById("dialog-body").replaceChildren(body);
  const box = document.getElementById("dialog-buttons");
  box.replaceChildren(...buttons.map(([label, cls, fn]) => h("button", {
    class: cls, type: "button", onclick: async () => { d.close(); if (fn) await fn(); } }, label)));
  d.showModal();
  (box.querySelector(".primary, .danger") || box.querySelector("button")).focus();
}

async function loadState() {
  app.state = await api(`/api/state`);
  document.getElementById("identity").textContent = app.state.identity;
}

// --- router ----------------------------------------------------------------------------------

async function route() {
  const hash = location.hash || "#/policies";
  const nav = ++app.nav;  // a newer navigation wins over this one's late answers
  for (const a of document.querySelectorAll("header nav a")) {
    a.toggleAttribute("aria-current", hash.startsWith(a.getAttribute("href")));
    if (hash.startsWith(a.getAttribute("href"))) a.setAttribute("aria-current", "page");
  }
  try {
    await loadState();
    if (nav !== app.nav) return;
    if (hash.startsWith("#/edit/")) {
      const [ns, name] = hash.slice("#/edit/".length).split("/").map(decodeURIComponent);
      return renderEditor(ns, name);
    }
    if (hash.startsWith("#/new")) return renderEditor(null, null);
    if (hash.startsWith("#/matrix")) return renderMatrix();
    return renderPolicies();
  } catch (e) {
    main.replaceChildren(h("div", { class: "error-box", role: "alert" }, `Could not load: ${e.message}`));
  }
}

// --- policies table --------------------------------------------------------------------------

function appliedText(row) {
  if (!row.applied) return h("span", { class: "muted", title: "offline: no agents" }, "—");
  const { applied, of } = row.applied;
  const text = applied === of ? `${applied}/${of} pods` : `${applied}/${of} pods (pending)`;
  return h("span", { title: "selected pods whose node's agent enforces the rule sets compiled from this state" }, text);
}

function policyTypesText(row) {
  return row.explicitTypes ? row.policyTypes.join(", ") : `Default (${row.policyTypes.join(", ")})`;
}

function renderPolicies() {
  const rows = app.state.policies.filter((r) => !app.namespace || r.namespace === app.namespace);
  const nsSelect = h("select", { id: "ns-filter", onchange: (e) => { app.namespace = e.target.value; renderPolicies(); } },
    h("option", { value: "" }, "All namespaces"),
    app.state.namespaces.map((n) => h("option", { value: n, selected: n === app.namespace }, n)));
  const table = h("table", { class: "policies", id: "policies" },
    h("caption", { class: "sr-only" }, "Network policies"),
    h("thead", {}, h("tr", {}, ["Namespace", "Name", "Description", "Selected pods", "Policy Types", "Ingress rules",
      "Egress rules", "Applied", "Problems"].map((t) => h("th", { scope: "col" }, t)),
      h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
    h("tbody", {}, rows.length ? rows.map(policyRow)
      : h("tr", {}, h("td", { colspan: 10, class: "muted" }, "No network policies here yet."))));
  main.replaceChildren(
    h("h1", {}, "Network Policy"),
    h("div", { class: "toolbar" },
      h("label", { class: "stack", for: "ns-filter" }, "Namespace"), nsSelect,
      h("button", { class: "primary", type: "button", id: "add-policy", onclick: () => {
        app.pending = null; location.hash = "#/new"; } }, "+ Add Network Policy"),
      h("button", { type: "button", onclick: route }, "Refresh")),
    table);
}

function policyRow(row) {
  const id = `${row.namespace}/${row.name}`;
  const menuId = `menu-${row.namespace}-${row.name}`;
  const button = h("button", { type: "button", class: "menu-button", "aria-haspopup": "menu", "aria-expanded": "false",
    "aria-controls": menuId, "aria-label": `Actions for ${row.name}`, onclick: () => toggleMenu(button, menu) }, "⋮");
  const item = (label, fn) => h("li", { role: "none" }, h("button", { type: "button", role: "menuitem", tabindex: "-1",
    onclick: () => { closeMenus(); fn(); } }, label));
  const menu = h("ul", { role: "menu", id: menuId, hidden: true, "aria-label": `Actions for ${row.name}`,
    onkeydown: (e) => menuKeys(e, button, menu) },
    item("Edit", () => { app.pending = null; location.hash = `#/edit/${encodeURIComponent(row.namespace)}/${encodeURIComponent(row.name)}`; }),
    item("Duplicate", () => {
      const names = app.state.policies.filter((p) => p.namespace === row.namespace).map((p) => p.name);
      app.pending = { policy: pf.duplicatePolicy(row.policy, names), original: null,
        note: `Duplicate of ${row.name}: choose an ID Name, review, then Save.` };
      location.hash = "#/new";
    }),
    item("Disable ingress", () => disable(row, "Ingress")),
    item("Disable egress", () => disable(row, "Egress")),
    item("Delete", () => confirmDelete(row)),
    item("View YAML", () => viewYaml(row)));
  const selected = h("details", {}, h("summary", {}, `${row.selectedCount} pod${row.selectedCount === 1 ? "" : "s"}`),
    h("ul", {}, row.selected.map((p) => h("li", {}, p))));
  const tr = h("tr", { "data-policy": id, oncontextmenu: (e) => { e.preventDefault(); toggleMenu(button, menu, true); } },
    h("td", {}, row.namespace), h("th", { scope: "row" }, row.name), h("td", {}, row.description || h("span", { class: "muted" }, "—")),
    h("td", { class: "selected" }, selected), h("td", { class: "types" }, policyTypesText(row)),
    h("td", {}, String(row.ingressRules)), h("td", {}, String(row.egressRules)),
    h("td", { class: "applied" }, appliedText(row)),
    h("td", { class: "problems" }, row.problems.length ? h("ul", {}, row.problems.map((p) => h("li", {}, p))) : ""),
    h("td", { class: "menu-wrap" }, button, menu));
  return tr;
}

function closeMenus() {
  for (const m of document.querySelectorAll("[role=menu]")) m.hidden = true;
  for (const b of document.querySelectorAll(".menu-button")) b.setAttribute("aria-expanded", "false");
}

function toggleMenu(button, menu, open) {
  const show = open === undefined ? menu.hidden : open;
  closeMenus();
  if (!show) return;
  menu.hidden = false;
  button.setAttribute("aria-expanded", "true");
  menu.querySelector("[role=menuitem]").focus();
}

function menuKeys(e, button, menu) {
  const items = [...menu.querySelectorAll("[role=menuitem]")];
  const i = items.indexOf(document.activeElement);
  if (e.key === "ArrowDown") { items[(i + 1) % items.length].focus(); e.preventDefault(); }
  else if (e.key === "ArrowUp") { items[(i - 1 + items.length) % items.length].focus(); e.preventDefault(); }
  else if (e.key === "Escape") { closeMenus(); button.focus(); }
}

document.addEventListener("click", (e) => {
  if (!e.target.closest(".menu-wrap")) closeMenus();
});

function disable(row, direction) {
  const result = pf.disableDirection(row.policy, direction);
  if (!result.changed) { say(`${row.name}: ${result.note}.`); return; }
  app.pending = { policy: result.policy, original: [row.namespace, row.name],
    note: `${result.note}. Review the preview, then Save.` };
  location.hash = `#/edit/${encodeURIComponent(row.namespace)}/${encodeURIComponent(row.name)}`;
}

function confirmDelete(row) {
  dialog(`Delete ${row.name}?`, h("p", {}, `Delete network policy ${row.namespace}/${row.name}? It selects ${row.selectedCount} pod(s); `
    + "they lose what it allows (or are no longer isolated by it)."), [
    ["Cancel", "", null],
    ["Delete", "danger", async () => {
      try { await api("/api/delete", { namespace: row.namespace, name: row.name }); say(`Deleted ${row.name}.`); }
      catch (e) { say(`Delete failed: ${e.message}`); }
      await route();
    }],
  ]);
}

async function viewYaml(row) {
  const res = await api("/api/preview", { policy: row.policy, original: [row.namespace, row.name] });
  dialog(`${row.name} (YAML)`, h("pre", { id: "yaml-view" }, res.yaml), [["Close", "primary", null]]);
}

// --- editor ----------------------------------------------------------------------------------

const ed = { form: null, original: null, seq: 0, timer: null, yamlTimer: null, preview: null };

function renderEditor(ns, name) {
  const existing = ns ? app.state.policies.find((p) => p.namespace === ns && p.name === name) : null;
  if (ns && !existing) {
    main.replaceChildren(h("div", { class: "error-box", role: "alert" }, `No network policy ${ns}/${name}.`));
    return;
  }
  const pending = app.pending;
  app.pending = null;
  ed.original = existing ? [ns, name] : null;
  const start = pending ? pending.policy : existing ? existing.policy : null;
  ed.form = start ? pf.policyToForm(start) : pf.emptyForm(app.namespace || app.state.namespaces[0] || "default");
  const title = existing ? `Edit network policy ${ns}/${name}` : "Add network policy";
  fill(main,
    h("div", { class: "toolbar" },
      h("h1", {}, title),
      h("button", { class: "primary", type: "button", id: "save", onclick: save }, "Save"),
      h("button", { type: "button", id: "cancel", onclick: () => { location.hash = "#/policies"; } }, "Cancel")),
    pending && pending.note ? h("p", { class: "help", id: "pending-note" }, pending.note) : null,
    h("div", { id: "save-error", role: "alert" }),
    h("div", { class: "editor" },
      h("form", { id: "form", "aria-label": "Network policy", onsubmit: (e) => e.preventDefault(),
        oninput: onFormInput, onchange: onFormChange, onclick: onFormClick }),
      h("section", { "aria-labelledby": "yaml-title" },
        h("h2", { id: "yaml-title" }, h("label", { for: "yaml" }, "YAML")),
        h("p", { class: "help" }, "Edit the form or the YAML: the other follows."),
        h("textarea", { id: "yaml", spellcheck: "false", oninput: onYamlInput }),
        h("div", { id: "yaml-error", role: "alert" }),
        h("section", { id: "preview", "aria-live": "polite", "aria-labelledby": "preview-title" },
          h("h2", { id: "preview-title" }, "Preview")))));
  renderForm();
  runPreview();
}

function bindId(bind) { return `f-${bind.replaceAll(".", "-")}`; }

function input(label, bind, path, attrs = {}) {
  const id = bindId(bind);
  const value = pf.getAt(ed.form, bind);
  return h("label", { class: "stack", for: id }, label,
    h("input", { id, type: "text", "data-bind": bind, "data-path": path, value: value ?? "", ...attrs }));
}

function checkbox(label, bind, path, extra = {}) {
  const id = bindId(bind);
  return h("label", { for: id }, h("input", { id, type: "checkbox", "data-bind": bind, "data-path": path,
    checked: !!pf.getAt(ed.form, bind), ...extra }), ` ${label}`);
}

function select(label, bind, path, options, attrs = {}) {
  const id = bindId(bind);
  const value = pf.getAt(ed.form, bind);
  return h("label", { class: "stack", for: id }, label,
    h("select", { id, "data-bind": bind, "data-path": path, ...attrs },
      options.map((o) => h("option", { value: o, selected: o === value }, o))));
}

function action(label, act, at, extra = {}) {
  return h("button", { type: "button", "data-action": act, "data-at": at, id: `${bindId(at)}-${act}`, ...extra }, label);
}

function selectorBlock(bind, path, title) {
  const sel = pf.getAt(ed.form, bind);
  return h("div", { class: "selector", "data-path": path, id: bindId(bind) },
    title ? h("h4", {}, title) : null,
    sel.labels.map((_, i) => h("div", { class: "row label-row" },
      input("Key", `${bind}.labels.${i}.key`, `${path}.matchLabels`),
      input("Value", `${bind}.labels.${i}.value`, `${path}.matchLabels.${sel.labels[i].key}`),
      action("Remove", "remove", `${bind}.labels.${i}`, { "aria-label": `Remove label ${i + 1}` }))),
    sel.expressions.map((e, i) => h("div", { class: "row expression-row" },
      input("Key", `${bind}.expressions.${i}.key`, `${path}.matchExpressions[${i}].key`),
      select("Operator", `${bind}.expressions.${i}.operator`, `${path}.matchExpressions[${i}].operator`, pf.OPERATORS),
      input("Values", `${bind}.expressions.${i}.values`, `${path}.matchExpressions[${i}].values`,
        { disabled: e.operator === "Exists" || e.operator === "DoesNotExist", placeholder: "a, b" }),
      action("Remove", "remove", `${bind}.expressions.${i}`, { "aria-label": `Remove expression ${i + 1}` }))),
    h("div", { class: "row" }, action("Match Label", "add-label", bind), action("Match Expression", "add-expression", bind)));
}

function peerBlock(field, r, j) {
  const peersField = field === "ingress" ? "from" : "to";
  const bind = `${field}.${r}.peers.${j}`;
  const path = `spec.${field}[${r}].${peersField}[${j}]`;
  const peer = pf.getAt(ed.form, bind);
  const word = field === "ingress" ? "Source" : "Destination";
  return h("div", { class: "peer", "data-path": path, id: bindId(bind), role: "group", "aria-label": `${word} ${j + 1}` },
    h("h4", {}, `${word} ${j + 1}`),
    h("p", { class: "help" }, "Namespaces and pods set in one " + word.toLowerCase()
      + " must both match (AND); separate " + word.toLowerCase() + "s are alternatives (OR)."),
    h("div", { class: "row" }, checkbox("Select All Namespaces", `${bind}.allNamespaces`, `${path}.namespaceSelector`)),
    !peer.allNamespaces ? (peer.namespaceSelector
      ? h("div", {}, selectorBlock(`${bind}.namespaceSelector`, `${path}.namespaceSelector`, "Namespace Selector"),
        action("Remove namespace selector", "remove-nss", bind))
      : action("+ Add Namespace Selector", "add-nss", bind)) : null,
    h("div", { class: "row" }, checkbox("Select All Pods", `${bind}.allPods`, `${path}.podSelector`)),
    !peer.allPods ? (peer.podSelector
      ? h("div", {}, selectorBlock(`${bind}.podSelector`, `${path}.podSelector`, "Pod Selector"),
        action("Remove pod selector", "remove-pods", bind))
      : action("+ Add Pod Selector", "add-pods", bind)) : null,
    peer.ipBlock ? h("div", { class: "row", "data-path": `${path}.ipBlock` },
      input("CIDR", `${bind}.ipBlock.cidr`, `${path}.ipBlock.cidr`, { placeholder: "10.0.0.0/16" }),
      input("Exceptions", `${bind}.ipBlock.except`, `${path}.ipBlock.except`, { placeholder: "10.0.1.0/24, 10.0.2.0/24" }),
      action("Remove IP block", "remove-ipblock", bind))
      : action("+ Add IP Block", "add-ipblock", bind),
    h("div", { class: "row" }, action(`Remove ${word.toLowerCase()}`, "remove", bind)));
}

function ruleBlock(field, r) {
  const bind = `${field}.${r}`;
  const path = `spec.${field}[${r}]`;
  const rule = ed.form[field][r];
  const Dir = field === "ingress" ? "Ingress" : "Egress";
  return h("div", { class: "rule", "data-path": path, id: bindId(bind), role: "group", "aria-label": `${Dir} rule ${r + 1}` },
    h("h3", {}, `${Dir} rule ${r + 1}`),
    rule.ports.map((_, p) => h("div", { class: "row port-row", "data-path": `${path}.ports[${p}]` },
      input("Port", `${bind}.ports.${p}.port`, `${path}.ports[${p}].port`, { placeholder: "8080 or a name", size: 10 }),
      input("End Port", `${bind}.ports.${p}.endPort`, `${path}.ports[${p}].endPort`, { placeholder: "range end", size: 8 }),
      select("Protocol", `${bind}.ports.${p}.protocol`, `${path}.ports[${p}].protocol`, pf.PROTOCOLS),
      action("Remove", "remove", `${bind}.ports.${p}`, { "aria-label": `Remove port ${p + 1}` }))),
    rule.ports.length ? null : h("p", { class: "help" }, "No ports: every port and protocol."),
    action("+ Add Port", "add-port", bind),
    h("h4", {}, field === "ingress" ? "Sources: From" : "Destination: To"),
    rule.peers.length ? null : h("p", { class: "help" }, field === "ingress" ? "No sources: from anywhere." : "No destinations: to anywhere."),
    rule.peers.map((_, j) => peerBlock(field, r, j)),
    action(field === "ingress" ? "+ Add Source" : "+ Add Destination", "add-peer", bind),
    h("div", { class: "row" }, action(`Remove ${field} rule`, "remove", bind)));
}

function typeBox(which, label, help) {
  const id = `type-${which}`;
  return h("div", {}, h("label", { for: id }, h("input", { id, type: "checkbox", "data-type": which, "data-path": "spec.policyTypes",
    checked: ed.form.types[which], "aria-describedby": `${id}-help` }), ` ${label}`),
  h("p", { class: "help", id: `${id}-help` }, help));
}

function renderForm() {
  const form = document.getElementById("form");
  const focused = document.activeElement && form.contains(document.activeElement) ? document.activeElement.id : null;
  const f = ed.form;
  const nsOptions = [...new Set([...app.state.namespaces, f.namespace])];
  form.replaceChildren(
    h("fieldset", {}, h("legend", {}, "General information"),
      input("ID Name", "name", "metadata.name", { required: true, autocomplete: "off" }),
      select("Namespace", "namespace", "metadata.namespace", nsOptions, { disabled: !!ed.original }),
      h("label", { class: "stack", for: "f-description" }, "Description",
        h("textarea", { id: "f-description", "data-bind": "description", "data-path": "metadata.annotations", rows: 2 }, f.description)),
      h("fieldset", { "data-path": "spec.podSelector" }, h("legend", {}, "Pod Selector"),
        h("p", { class: "help" }, "Select the pods this policy applies to by Labels or Expressions. None: every pod in the namespace."),
        selectorBlock("podSelector", "spec.podSelector", null))),
    h("fieldset", { "data-path": "spec.policyTypes", id: "policy-types" }, h("legend", {}, "Policy Types"),
      typeBox("default", "Default", "Automatically includes ingress, and egress is set only if the network policy defines egress rules."),
      typeBox("ingress", "Ingress", "This policy applies to ingress traffic for the selected pods using the options you define below. "
        + "To deny all ingress traffic, select Ingress and leave the ingress rules empty."),
      typeBox("egress", "Egress", "This policy applies to egress traffic for the selected pods using the options you define below. "
        + "To deny all egress traffic, select Egress and leave the egress rules empty.")),
    h("fieldset", { "data-path": "spec.ingress", id: "ingress-rules" }, h("legend", {}, "Ingress Rules"),
      h("p", { class: "help" }, "Ingress rules use a combination of Port / Protocol and Source to define the incoming traffic allowed."),
      f.ingress.map((_, r) => ruleBlock("ingress", r)),
      action("+ Add Ingress Rule", "add-rule", "ingress")),
    h("fieldset", { "data-path": "spec.egress", id: "egress-rules" }, h("legend", {}, "Egress Rules"),
      h("p", { class: "help" }, "Egress rules use Port / Protocol and Destination to define the outgoing traffic allowed."),
      f.egress.map((_, r) => ruleBlock("egress", r)),
      action("+ Add Egress Rule", "add-rule", "egress")));
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  if (ed.preview) placeErrors(ed.preview);
}

function onFormInput(e) {
  const bind = e.target.dataset.bind;
  if (!bind || e.target.type === "checkbox") return;
  pf.setAt(ed.form, bind, e.target.value);
  if (bind.endsWith(".operator")) renderForm();
  schedulePreview();
}

function onFormChange(e) {
  const t = e.target;
  if (t.dataset.type) {
    ed.form.types = pf.setType(ed.form.types, t.dataset.type, t.checked);
    renderForm();
    schedulePreview();
  } else if (t.type === "checkbox" && t.dataset.bind) {
    pf.setAt(ed.form, t.dataset.bind, t.checked);
    renderForm();
    schedulePreview();
  } else if (t.tagName === "SELECT" && t.dataset.bind) {
    pf.setAt(ed.form, t.dataset.bind, t.value);
    renderForm();
    schedulePreview();
  }
}

function onFormClick(e) {
  const button = e.target.closest("button[data-action]");
  if (!button) return;
  const at = button.dataset.at;
  const target = pf.getAt(ed.form, at);
  let focus = null;
  switch (button.dataset.action) {
    case "add-label": target.labels.push({ key: "", value: "" }); focus = `${at}.labels.${target.labels.length - 1}.key`; break;
    case "add-expression":
      target.expressions.push({ key: "", operator: "In", values: "" });
      focus = `${at}.expressions.${target.expressions.length - 1}.key`; break;
    case "add-rule": target.push(pf.emptyRule()); focus = `${at}.${target.length - 1}`; break;
    case "add-port": target.ports.push(pf.emptyPort()); focus = `${at}.ports.${target.ports.length - 1}.port`; break;
    case "add-peer": target.peers.push(pf.emptyPeer()); focus = `${at}.peers.${target.peers.length - 1}.allNamespaces`; break;
    case "add-pods": target.podSelector = pf.emptySelector(); focus = `${at}.podSelector`; break;
    case "add-nss": target.namespaceSelector = pf.emptySelector(); focus = `${at}.namespaceSelector`; break;
    case "add-ipblock": target.ipBlock = { cidr: "", except: "" }; focus = `${at}.ipBlock.cidr`; break;
    case "remove-pods": target.podSelector = null; break;
    case "remove-nss": target.namespaceSelector = null; break;
    case "remove-ipblock": target.ipBlock = null; break;
    case "remove": {
      const keys = at.split(".");
      const index = Number(keys.pop());
      pf.getAt(ed.form, keys.join(".")).splice(index, 1);
      break;
    }
    default: return;
  }
  renderForm();
  if (focus) {
    let el = document.getElementById(bindId(focus));
    if (el && !/^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(el.tagName)) el = el.querySelector("input, select, button");
    if (el) el.focus();
  }
  schedulePreview();
}

function schedulePreview() {
  clearTimeout(ed.timer);
  ed.timer = setTimeout(runPreview, 40);
}

async function runPreview() {
  const seq = ++ed.seq;
  const policy = pf.formToPolicy(ed.form);
  let res;
  try { res = await api("/api/preview", { policy, original: ed.original }); }
  catch (e) { say(`Preview failed: ${e.message}`); return; }
  if (seq !== ed.seq) return; // a newer edit is on its way
  ed.preview = res;
  const yaml = document.getElementById("yaml");
  if (yaml && document.activeElement !== yaml) yaml.value = res.yaml;
  renderPreview(res);
  placeErrors(res);
  document.body.dataset.previewSeq = String(seq);
}

function onYamlInput() {
  clearTimeout(ed.yamlTimer);
  ed.yamlTimer = setTimeout(async () => {
    const box = document.getElementById("yaml-error");
    const res = await api("/api/parse", { yaml: document.getElementById("yaml").value });
    if (res.error) { box.replaceChildren(h("p", { class: "field-error" }, `YAML: ${res.error} (the form keeps its last valid state)`)); return; }
    box.replaceChildren();
    ed.form = pf.policyToForm(res.policy);
    if (ed.original) ed.form.namespace = ed.original[0];
    renderForm();
    runPreview();
  }, 200);
}

function placeErrors(res) {
  const form = document.getElementById("form");
  if (!form) return;
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) { el.removeAttribute("aria-invalid"); el.removeAttribute("aria-describedby"); }
  const elements = [...form.querySelectorAll("[data-path]")];
  const paths = [...new Set(elements.map((el) => el.dataset.path))];
  const unplaced = [];
  let n = 0;
  for (const p of [...(res.validation || []), ...(res.problems || [])]) {
    const best = pf.bestPath(p.field, paths);
    if (!best) { unplaced.push(`${p.field}: ${p.message}`); continue; }
    const el = elements.find((x) => x.dataset.path === best);
    const id = `err-${n++}`;
    const msg = h("p", { class: "field-error", id }, p.message);
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) {
      el.setAttribute("aria-invalid", "true");
      el.setAttribute("aria-describedby", id);
      el.closest("label").after(msg);
    } else {
      el.prepend(msg);
    }
  }
  const general = document.getElementById("save-error");
  if (general && !general.dataset.saveFailed) {
    general.replaceChildren(...(unplaced.length ? [h("div", { class: "error-box" }, unplaced.join("\n"))] : []));
  }
}

function cellText(ok) { return ok ? "✓" : "✗"; }

function renderPreview(res) {
  const box = document.getElementById("preview");
  const selected = h("section", { id: "preview-selected" }, h("h3", {}, `Selected pods (${res.selected.length})`),
    res.selected.length ? h("ul", {}, res.selected.map((p) => h("li", {}, p))) : h("p", { class: "muted" }, "None."));
  const warnings = h("section", { id: "preview-warnings" }, h("h3", {}, "Warnings"),
    res.warnings.length ? h("ul", { class: "warnings" }, res.warnings.map((w) => h("li", {}, w))) : h("p", { class: "muted" }, "None."));
  const impact = h("section", { id: "preview-impact" }, h("h3", {}, "Impact (before → after)"),
    res.impact.length ? null : h("p", { class: "muted" }, "No connection changes."),
    res.impact.map((t) => impactTable(t)));
  box.replaceChildren(h("h2", { id: "preview-title" }, "Preview"), selected, warnings, impact);
}

function impactTable(t) {
  const caption = `${t.direction === "Ingress" ? "Into" : "Out of"} the changed pods, ${t.protocol}/${t.port}: `
    + `${t.changed} cell${t.changed === 1 ? "" : "s"} change`;
  return h("table", { class: "grid impact", "data-direction": t.direction, "data-port": String(t.port) },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", {}, "from \\ to"), t.cols.map((c) => h("th", { scope: "col", class: "colhead" }, c.title)))),
    h("tbody", {}, t.rows.map((r) => h("tr", {}, h("th", { scope: "row", class: "rowhead" }, r.title),
      t.cols.map((c) => {
        const b = t.before[r.id][c.id];
        const a = t.after[r.id][c.id];
        const changed = a !== b;
        return h("td", { class: changed ? "changed" : "", "data-src": r.id, "data-dst": c.id,
          title: `${r.title} → ${c.title}: ${b ? "allowed" : "blocked"} before, ${a ? "allowed" : "blocked"} after` },
        changed ? `${cellText(b)}→${cellText(a)}` : cellText(a));
      })))));
}

async function save() {
  const errBox = document.getElementById("save-error");
  errBox.dataset.saveFailed = "";
  delete errBox.dataset.saveFailed;
  errBox.replaceChildren();
  const policy = pf.formToPolicy(ed.form);
  try {
    await api("/api/save", { policy, original: ed.original });
    say(`Saved ${policy.metadata.namespace}/${policy.metadata.name}.`);
    app.namespace = policy.metadata.namespace;
    location.hash = "#/policies";
  } catch (e) {
    errBox.dataset.saveFailed = "1";
    errBox.replaceChildren(h("div", { class: "error-box", id: "save-error-text" }, `Not saved: ${e.message}`));
    if (e.data && (e.data.validation || e.data.problems)) placeErrors(e.data);
    errBox.scrollIntoView({ block: "nearest" });
  }
}

// --- matrix ----------------------------------------------------------------------------------

function defaultPort() {
  for (const p of app.state.policies) {
    for (const field of ["ingress", "egress"]) {
      for (const r of p.policy.spec[field] || []) {
        for (const port of r.ports || []) if (typeof port.port === "number") return String(port.port);
      }
    }
  }
  return "80";
}

async function renderMatrix(probe = false) {
  if (!app.matrixPort) app.matrixPort = defaultPort();
  const port = h("input", { id: "m-port", type: "text", inputmode: "numeric", value: app.matrixPort, size: 6 });
  const proto = h("select", { id: "m-protocol" }, pf.PROTOCOLS.map((p) => h("option", { selected: p === app.matrixProtocol }, p)));
  const show = async (withProbe) => {
    app.matrixPort = port.value.trim();
    app.matrixProtocol = proto.value;
    await renderMatrix(withProbe);
  };
  const controls = h("div", { class: "toolbar" },
    h("label", { class: "stack", for: "m-port" }, "Port"), port,
    h("label", { class: "stack", for: "m-protocol" }, "Protocol"), proto,
    h("button", { type: "button", class: "primary", id: "m-show", onclick: () => show(false) }, "Show"),
    app.state.probe ? h("button", { type: "button", id: "m-probe", onclick: () => show(true) }, "Probe") : null,
    h("span", { class: "legend" }, "✓ allowed, ✗ blocked; rows are sources, columns destinations; click a cell for why."));
  const holder = h("div", { id: "matrix-holder" }, h("p", {}, probe ? "Probing…" : "Computing…"));
  const explanation = h("section", { id: "explanation", "aria-live": "polite", "aria-labelledby": "explain-title" },
    h("h2", { id: "explain-title" }, "Explanation"), h("p", { class: "muted" }, "Select a cell."));
  main.replaceChildren(h("h1", {}, "Matrix"), controls, holder, explanation);
  const expand = [...app.expanded];
  let data;
  try {
    if (probe) data = await api("/api/probe", { port: app.matrixPort, protocol: app.matrixProtocol, expand });
    else {
      const q = new URLSearchParams({ port: app.matrixPort, protocol: app.matrixProtocol });
      for (const e of expand) q.append("expand", e);
      data = await api(`/api/matrix?${q}`);
    }
  } catch (e) {
    holder.replaceChildren(h("div", { class: "error-box", role: "alert" }, e.message));
    return;
  }
  fill(holder, matrixTable(data), probe ? h("p", { id: "probe-summary" },
    `predicted/probed: ${data.probes} pairs probed with netcat; ${data.differ.length} cell(s) differ (marked !); `
    + "– : the destination declares no listener on this port.") : null,
  probe && data.drops && data.drops.length ? h("section", { id: "drops", "aria-labelledby": "drops-title" },
    h("h2", { id: "drops-title" }, "Drops the agents counted while probing"),
    h("ul", {}, data.drops.map((d) => h("li", {}, d)))) : null);
}

function toggleGroup(group) {
  if (app.expanded.has(group)) app.expanded.delete(group); else app.expanded.add(group);
  renderMatrix();
}

function itemHeader(item, scope) {
  const toggle = item.expandable ? h("button", { type: "button", class: "cell", "aria-expanded": String(item.pod),
    "aria-label": `${item.pod ? "Collapse" : "Expand"} ${item.title}`, onclick: () => toggleGroup(item.group) }, item.pod ? "▾" : "▸") : null;
  return h("th", { scope, class: scope === "row" ? "rowhead" : "colhead", "data-id": item.id }, toggle, ` ${item.title}`);
}

function matrixTable(data) {
  const groups = pf.byNamespace(data.items);
  const head1 = h("tr", {}, h("th", {}, ""), groups.map((g) => h("th", { colspan: g.items.length, class: "ns", scope: "colgroup" }, g.namespace)));
  const head2 = h("tr", {}, h("th", {}, "from \\ to"), data.items.map((i) => itemHeader(i, "col")));
  const differ = new Set((data.differ || []).map(([s, d]) => `${s}\u0000${d}`));
  const body = data.items.map((s) => h("tr", {}, itemHeader(s, "row"), data.items.map((d) => {
    const predicted = data.allowed[s.id][d.id];
    const probing = !!data.probed;
    const probed = probing ? data.probed[s.id][d.id] : null;
    const diff = differ.has(`${s.id}\u0000${d.id}`);
    const label = `from ${s.title} to ${d.title}: ${predicted ? "allowed" : "blocked"}`
      + (!probing ? "" : probed === null ? `; not probed (${d.title} declares no ${data.protocol}/${data.port})`
        : `; probed ${probed ? "allowed" : "blocked"}`);
    const text = !probing ? cellText(predicted) : `${cellText(predicted)}/${probed === null ? "–" : cellText(probed)}`;
    return h("td", { class: diff ? "differ" : "", "data-src": s.id, "data-dst": d.id },
      h("button", { type: "button", class: `cell ${predicted ? "allowed" : "blocked"}`, "aria-label": label, title: label,
        onclick: () => explainCell(s, d, data) }, text + (diff ? "!" : "")));
  })));
  return h("table", { class: "grid", id: "matrix" }, h("caption", { class: "sr-only" }, `Who can reach whom on ${data.protocol}/${data.port}`),
    h("thead", {}, head1, head2), h("tbody", {}, body));
}

async function explainCell(s, d, data) {
  const box = document.getElementById("explanation");
  const q = new URLSearchParams({ src: s.id, dst: d.id, port: String(data.port), protocol: data.protocol });
  try {
    const res = await api(`/api/explain?${q}`);
    box.replaceChildren(h("h2", { id: "explain-title" }, `Explanation: ${s.title} → ${d.title}`),
      h("pre", { class: "explanation", id: "explanation-text" }, res.text));
  } catch (e) {
    box.replaceChildren(h("div", { class: "error-box" }, e.message));
  }
}

// Live mode: the table's selected pods follow the cluster (pods come and go) while the page is open.
setInterval(async () => {
  const onTable = !location.hash || location.hash.startsWith("#/policies");
  const busy = document.querySelector("[role=menu]:not([hidden])") || document.getElementById("dialog").open
    || (document.activeElement && document.activeElement.closest("#policies, .toolbar"));
  if (!app.state || app.state.mode !== "live" || !onTable || busy) return;
  const nav = app.nav;
  try {
    const before = JSON.stringify(app.state.policies);
    await loadState();
    const still = nav === app.nav && (!location.hash || location.hash.startsWith("#/policies"));
    if (still && JSON.stringify(app.state.policies) !== before) renderPolicies();  // only when something changed
  } catch (e) { /* the next tick tries again */ }
}, 5000);

window.addEventListener("hashchange", route);
route();
