#!/usr/bin/env node
// Stands in for the vipfarm agent in the operator's tests (the real agent's Kubernetes mode
// has its own tests): the operator's DaemonSet runs it on real nodes in the project's image
// (the test puts this file on the host under /run/vipfarm, which the agent pod mounts), with
// the agent's ServiceAccount token, so every API call here also checks the agent's RBAC.
// It reads its FarmCluster and Secret, serves /readyz on the farm's metrics port, claims an
// equal share of the buckets among the farm's agent pods in status.members (server-side
// apply, field manager vipfarm-agent-<node>), and on SIGTERM leaves a ".cleaned" marker
// where the real agent would remove its kernel state. Its markers go next to this file,
// named by the FarmCluster's uid (unique per run).
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// the image's application (Dockerfile: WORKDIR /app)
const { KubeConfig } = await import('/app/node_modules/@kubernetes/client-node/dist/index.js');
const { Kube } = await import('/app/dist/operator/src/kube.js');
const { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND } = await import('/app/dist/common/src/farmcluster-types.js');

const farm = process.argv[process.argv.indexOf('--farm') + 1];
const node = process.env.NODE_NAME;
const namespace = process.env.POD_NAMESPACE;
const dir = path.dirname(fileURLToPath(import.meta.url));
const log = (msg, extra = {}) => process.stderr.write(JSON.stringify({ fake: 'agent', farm, node, msg, ...extra }) + '\n');

const kc = new KubeConfig();
kc.loadFromCluster();
const kube = new Kube(kc);
const fcRef = { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, namespace, name: farm };

const fc = await kube.get(fcRef);
if (!fc) throw new Error(`FarmCluster ${namespace}/${farm} not found`);
const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', namespace, name: `${farm}-heartbeat` });
if (!secret?.data?.key) throw new Error('heartbeat key missing');
writeFileSync(path.join(dir, `${fc.metadata.uid}.${node}.key`), secret.data.key);

let ready = false;
const server = http.createServer((req, res) => {
  const ok = req.url === '/healthz' || (req.url === '/readyz' && ready);
  res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'not ready\n');
});
server.listen(fc.spec.agent?.metricsPort ?? 9477, '0.0.0.0');

let last = '';
async function report() {
  const current = await kube.get(fcRef);
  if (!current) return;
  const pods = await kube.list({ apiVersion: 'v1', kind: 'Pod', namespace }, { labelSelector: `app.kubernetes.io/name=vipfarm-agent,vipfarm.io/farm=${farm}` });
  const nodes = [...new Set(pods.items.filter((p) => p.spec?.nodeName && !p.metadata.deletionTimestamp).map((p) => p.spec.nodeName))].sort();
  const count = current.spec.bucketCount ?? 256;
  const i = Math.max(0, nodes.indexOf(node));
  const n = Math.max(1, nodes.length);
  const buckets = Math.floor(count / n) + (i < count % n ? 1 : 0);
  const entry = { node, ready: true, state: 'ready', weight: current.spec.weights?.[node] ?? current.spec.defaultWeight ?? 1, buckets, peersReady: nodes.length };
  const text = JSON.stringify(entry);
  if (text === last) return;
  await kube.apply(
    { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, metadata: { name: farm, namespace }, status: { members: [{ ...entry, lastHeartbeat: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] } },
    `vipfarm-agent-${node}`,
    { subresource: 'status' },
  );
  last = text;
  ready = true;
  log('reported', entry);
}

const timer = setInterval(() => report().catch((err) => log('report failed', { error: err.message })), 300);
await report().catch((err) => log('report failed', { error: err.message }));

process.on('SIGTERM', () => {
  clearInterval(timer);
  writeFileSync(path.join(dir, `${fc.metadata.uid}.${node}.cleaned`), new Date().toISOString());
  log('cleaned up');
  server.close();
  process.exit(0);
});
