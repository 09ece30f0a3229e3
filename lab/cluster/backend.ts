// An ordinary workload for Service tests on real nodes: a Deployment of pods (pod IPs on
// the CNI network, not the host network) running a tiny TCP server from the project's image
// (it has node). Each connection is greeted with "<pod name> <client address>" (so a test
// sees which pod answered and whether the client's address was preserved), and every line
// is echoed back behind that greeting, the protocol lab/netns/helpers/{client,holder}.ts speak.

/** The server, run with `node -e`; POD_NAME comes from the downward API. */
const SERVER = `
const net = require('net');
const name = process.env.POD_NAME;
net.createServer((s) => {
  const who = name + ' ' + String(s.remoteAddress).replace(/^::ffff:/, '');
  s.setNoDelay(true);
  s.write(who + '\\n');
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\\n')) >= 0) { s.write(who + ' ' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); }
  });
  s.on('error', () => s.destroy());
}).listen({ port: Number(process.env.PORT), backlog: 1024 });
`;

export interface BackendOptions {
  name: string;
  namespace: string;
  image: string;
  replicas: number;
  /** container port; default 8080 */
  port?: number;
  /** only on these nodes (kubernetes.io/hostname); default anywhere, spread evenly */
  nodes?: string[];
  /** keep serving this long after the pod is deleted (a preStop sleep, as drain-aware
   *  apps do), so that its node's endpoint leaves the EndpointSlices before the server
   *  stops; default 0: the server exits at once on SIGTERM */
  drainSeconds?: number;
}

/** The Deployment (JSON text for `kubectl apply -f -`); pods labelled app=<name>. */
export function backendDeployment(o: BackendOptions): string {
  const port = o.port ?? 8080;
  const labels = { app: o.name };
  const affinity = o.nodes === undefined ? undefined : {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: o.nodes }] }],
      },
    },
  };
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...(affinity ? { affinity } : {}),
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: labels } }],
          terminationGracePeriodSeconds: 1 + (o.drainSeconds ?? 0),
          containers: [{
            name: 'server',
            image: o.image,
            imagePullPolicy: 'Never',
            command: ['node', '-e', SERVER],
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'PORT', value: String(port) },
            ],
            ports: [{ containerPort: port, protocol: 'TCP' }],
            readinessProbe: { tcpSocket: { port }, periodSeconds: 1 },
            ...(o.drainSeconds ? { lifecycle: { preStop: { exec: { command: ['sleep', String(o.drainSeconds)] } } } } : {}),
          }],
        },
      },
    },
  });
}

/** A greeting "<pod> <client address>" split; undefined for no answer. */
export function parseGreeting(line: string | null): { pod: string; client: string } | undefined {
  if (line === null) return undefined;
  const [pod, client] = line.split(' ');
  return pod && client ? { pod, client } : undefined;
}

/** A client run's answers (lab/netns/procs runClient) by pod: which pods answered how often,
 *  the client addresses they saw, the attempts no pod answered, and how many answers saw an
 *  address other than the attempt's own source (SNAT on the way). */
export function tallyGreetings<A extends { laddr: string; node: string | null }>(results: readonly A[]): { pods: Map<string, number>; clients: Set<string>; failed: A[]; wrongClient: number } {
  const pods = new Map<string, number>();
  const clients = new Set<string>();
  const failed: A[] = [];
  let wrongClient = 0;
  for (const a of results) {
    const g = parseGreeting(a.node);
    if (!g) {
      failed.push(a);
      continue;
    }
    pods.set(g.pod, (pods.get(g.pod) ?? 0) + 1);
    clients.add(g.client);
    if (g.client !== a.laddr) wrongClient++;
  }
  return { pods, clients, failed, wrongClient };
}
