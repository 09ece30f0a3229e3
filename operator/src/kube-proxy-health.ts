// Whether kube-proxy on a node already forwards a Service with externalTrafficPolicy Local
// to a local endpoint. An EndpointSlice says a pod is ready before kube-proxy has synced it
// (its own sync loop, up to a second or more later); a node that owned the Service IP's
// buckets meanwhile would drop or refuse their connections. kube-proxy answers on the
// Service's healthCheckNodePort, on every node, 200 when it has local endpoints for it and
// 503 when not — what cloud load balancers probe for the same reason. The operator probes
// it and lists a node for a Local IP only once it answers 200 (service-sync.ts).
import http from 'node:http';

export interface ProxyHealthTarget {
  /** "namespace/name" of the Service */
  service: string;
  node: string;
  /** the node's address (its agent pod's hostIP) */
  address: string;
  /** spec.healthCheckNodePort */
  port: number;
}

export interface ProxyHealth {
  /** the targets to keep probing (others are dropped); answers come back through onChange */
  setTargets(targets: readonly ProxyHealthTarget[]): void;
  /** the last answer: true 200, false anything else, undefined not probed yet */
  ready(service: string, node: string): boolean | undefined;
  stop(): void;
}

export interface ProxyHealthOptions {
  /** called when an answer changed (the Services are synced again) */
  onChange: (target: ProxyHealthTarget, ready: boolean) => void;
  intervalMs?: number;
  timeoutMs?: number;
  /** one probe; default an HTTP GET of http://address:port/ */
  probe?: (t: ProxyHealthTarget, timeoutMs: number) => Promise<boolean>;
}

const targetKey = (service: string, node: string): string => `${service}|${node}`;

export function httpProbe(t: ProxyHealthTarget, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const host = t.address.includes(':') ? `[${t.address}]` : t.address;
    const req = http.get(`http://${host}:${t.port}/`, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Probes every target each intervalMs (one at a time per target: a slow one never piles up). */
export function startProxyHealth(opts: ProxyHealthOptions): ProxyHealth {
  const intervalMs = opts.intervalMs ?? 300;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const probe = opts.probe ?? httpProbe;
  const targets = new Map<string, ProxyHealthTarget>();
  const answers = new Map<string, boolean>();
  const inFlight = new Set<string>();
  let stopped = false;

  const probeOne = (key: string, t: ProxyHealthTarget): void => {
    if (inFlight.has(key)) return;
    inFlight.add(key);
    void probe(t, timeoutMs).then((ok) => {
      inFlight.delete(key);
      const current = targets.get(key);
      // dropped, or re-targeted (another address or port) while the probe ran
      if (stopped || !current || current.address !== t.address || current.port !== t.port) return;
      if (answers.get(key) !== ok) {
        answers.set(key, ok);
        opts.onChange(t, ok);
      }
    });
  };
  const timer = setInterval(() => {
    for (const [key, t] of targets) probeOne(key, t);
  }, intervalMs);
  timer.unref();

  return {
    setTargets(list) {
      const next = new Map(list.map((t) => [targetKey(t.service, t.node), t]));
      for (const [key, t] of targets) {
        const n = next.get(key);
        if (!n || n.address !== t.address || n.port !== t.port) answers.delete(key);
      }
      targets.clear();
      for (const [key, t] of next) {
        targets.set(key, t);
        // a new target is probed at once, not an interval later
        if (!answers.has(key)) probeOne(key, t);
      }
    },
    ready: (service, node) => answers.get(targetKey(service, node)),
    stop() {
      stopped = true;
      clearInterval(timer);
      targets.clear();
    },
  };
}
