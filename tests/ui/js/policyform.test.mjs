// Unit tests of the editor's pure logic (operator/picket_operator/ui/static/policyform.js).
// Run: node --test tests/ui/js/   (tests/ui/test_frontend_units.py runs this under pytest)
import { test } from "node:test";
import assert from "node:assert/strict";
import * as f from "../../../operator/picket_operator/ui/static/policyform.js";

const seedApi = {
  apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
  metadata: { name: "microsvc-users-api-allow", namespace: "project-a",
              annotations: { [f.DESCRIPTION]: "Allow Users microservice clients", other: "kept" } },
  spec: {
    podSelector: { matchLabels: { "service.corp/users-api-role": "api" } },
    ingress: [{ ports: [{ port: 8080, protocol: "TCP" }],
                from: [{ namespaceSelector: {}, podSelector: { matchLabels: { "service.corp/users-api-role": "client" } } }] }],
  },
};

test("a policy survives the round trip through the form unchanged", () => {
  assert.deepEqual(f.formToPolicy(f.policyToForm(seedApi)), seedApi);
});

test("fields the form has no input for are kept", () => {
  const odd = structuredClone(seedApi);
  odd.spec.ingress[0].somethingNew = true;
  odd.spec.futureField = { a: 1 };
  odd.metadata.labels = { team: "x" };
  assert.deepEqual(f.formToPolicy(f.policyToForm(odd)), odd);
});

test("the seed's first procedure, typed into the form, writes the seed's policy", () => {
  const form = f.emptyForm("project-a");
  form.name = "microsvc-users-api-allow";
  form.description = "Allow Users microservice clients";
  form.podSelector.labels.push({ key: "service.corp/users-api-role", value: "api" });
  const rule = f.emptyRule();
  rule.ports.push({ port: "8080", endPort: "", protocol: "TCP" });
  const peer = f.emptyPeer();
  peer.allNamespaces = true;
  peer.podSelector = { labels: [{ key: "service.corp/users-api-role", value: "client" }], expressions: [] };
  rule.peers.push(peer);
  form.ingress.push(rule);
  const policy = f.formToPolicy(form);
  assert.equal(policy.spec.policyTypes, undefined, "Default writes no policyTypes");
  assert.deepEqual(policy.spec.ingress, seedApi.spec.ingress);
  assert.equal(policy.metadata.annotations[f.DESCRIPTION], "Allow Users microservice clients");
});

test("named ports stay names, numbers become numbers, ranges keep endPort", () => {
  assert.deepEqual(f.portToK8s({ port: "http", endPort: "", protocol: "TCP" }), { port: "http", protocol: "TCP" });
  assert.deepEqual(f.portToK8s({ port: " 8000 ", endPort: "9000", protocol: "UDP" }),
                   { port: 8000, endPort: 9000, protocol: "UDP" });
  assert.deepEqual(f.portToK8s({ port: "", endPort: "", protocol: "SCTP" }), { protocol: "SCTP" });
});

test("match expressions: In/NotIn carry values, Exists/DoesNotExist none", () => {
  const sel = { labels: [], expressions: [
    { key: "tier", operator: "In", values: "api, web" },
    { key: "debug", operator: "DoesNotExist", values: "ignored" },
  ] };
  assert.deepEqual(f.selectorToK8s(sel), { matchExpressions: [
    { key: "tier", operator: "In", values: ["api", "web"] }, { key: "debug", operator: "DoesNotExist" }] });
  assert.deepEqual(f.selectorToK8s(f.selectorFromK8s(f.selectorToK8s(sel))), f.selectorToK8s(sel));
});

test("IP blocks with exceptions", () => {
  const peer = f.emptyPeer();
  peer.ipBlock = { cidr: "10.0.0.0/8", except: "10.1.0.0/16, 10.2.0.0/16" };
  assert.deepEqual(f.peerToK8s(peer), { ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "10.2.0.0/16"] } });
  assert.deepEqual(f.peerFromK8s(f.peerToK8s(peer)), peer);
});

test("Policy Types: Default excludes Ingress and Egress, and none checked means Default", () => {
  let t = { default: true, ingress: false, egress: false };
  t = f.setType(t, "egress", true);
  assert.deepEqual(t, { default: false, ingress: false, egress: true });
  assert.deepEqual(f.policyTypes(t), ["Egress"]);
  t = f.setType(t, "egress", false);
  assert.deepEqual(t, { default: true, ingress: false, egress: false });
  assert.equal(f.policyTypes(t), null);
  t = f.setType(f.setType(t, "ingress", true), "default", true);
  assert.deepEqual(t, { default: true, ingress: false, egress: false });
});

test("Disable ingress keeps the rules and adds an empty egress rule so egress stays open (seed procedure 3)", () => {
  const { policy, changed } = f.disableDirection(seedApi, "Ingress");
  assert.ok(changed);
  assert.deepEqual(policy.spec.policyTypes, ["Egress"]);
  assert.deepEqual(policy.spec.egress, [{}]);
  assert.deepEqual(policy.spec.ingress, seedApi.spec.ingress);
  assert.equal(seedApi.spec.policyTypes, undefined, "the original is not modified");
});

test("Disable egress of an Ingress+Egress policy just drops Egress", () => {
  const both = structuredClone(seedApi);
  both.spec.policyTypes = ["Ingress", "Egress"];
  const { policy, changed } = f.disableDirection(both, "Egress");
  assert.ok(changed);
  assert.deepEqual(policy.spec.policyTypes, ["Ingress"]);
  assert.equal(policy.spec.egress, undefined);
  assert.equal(f.disableDirection(seedApi, "Egress").changed, false);
});

test("Duplicate picks a free name", () => {
  assert.equal(f.duplicatePolicy(seedApi, ["microsvc-users-api-allow-copy"]).metadata.name,
               "microsvc-users-api-allow-copy-2");
});

test("a problem's JSON path finds the closest field", () => {
  const paths = ["spec.ingress[0].ports[0].port", "spec.ingress[0]", "spec.ingress[1]", "metadata.name"];
  assert.equal(f.bestPath("spec.ingress[0].ports[0].port", paths), "spec.ingress[0].ports[0].port");
  assert.equal(f.bestPath("spec.ingress[0].from[0].ipBlock.cidr", paths), "spec.ingress[0]");
  assert.equal(f.bestPath("spec.ingress[10].from", paths), null);
  assert.equal(f.bestPath("spec.podSelector", paths), null);
});

test("state paths read and write nested form fields", () => {
  const form = f.emptyForm("x");
  form.ingress.push(f.emptyRule());
  form.ingress[0].ports.push(f.emptyPort());
  f.setAt(form, "ingress.0.ports.0.port", "443");
  assert.equal(f.getAt(form, "ingress.0.ports.0.port"), "443");
});

test("matrix items are grouped by namespace in order", () => {
  const groups = f.byNamespace([{ namespace: "a" }, { namespace: "a" }, { namespace: "b" }, { namespace: "" }]);
  assert.deepEqual(groups.map((g) => [g.namespace, g.items.length]), [["a", 2], ["b", 1], ["hosts", 1]]);
});
