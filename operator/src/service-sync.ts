// Writes the allocator's decisions to the API server: status.loadBalancer of each Service
// (server-side apply under the operator's field manager, so "held by us" is visible in
// managedFields after a restart), and Events saying why a Service got no address.
// Everything is recomputed from the informers' caches on every change; a failed write
// fails the sync and the work queue retries it with backoff.
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND, type FarmCluster } from '../../common/src/farmcluster-types.js';
import { parseFarmSpec } from '../../common/src/config/index.js';
import { FIELD_MANAGER } from '../../common/src/farm-objects.js';
import type { Logger } from '../../common/src/log.js';
import type { EventRecorder } from './events.js';
import type { Kube } from './kube.js';
import type { ProxyHealth, ProxyHealthTarget } from './kube-proxy-health.js';
import { allocate, farmServiceAddresses, type Decision, type FarmPool, type ServiceAddress, type ServiceView } from './service-allocator.js';

/** The fields of a core/v1 Service read here. */
export interface ServiceObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    creationTimestamp?: string | Date;
    annotations?: Record<string, string>;
    managedFields?: { manager?: string; subresource?: string; fieldsV1?: Record<string, unknown> }[];
  };
  spec?: {
    type?: string;
    loadBalancerClass?: string;
    loadBalancerIP?: string;
    sessionAffinity?: string;
    externalTrafficPolicy?: string;
    ipFamilies?: string[];
    ipFamilyPolicy?: string;
    healthCheckNodePort?: number;
    ports?: { port: number; protocol?: string }[];
  };
  status?: { loadBalancer?: { ingress?: { ip?: string; ipMode?: string }[] } };
}

/** The fields of a discovery.k8s.io/v1 EndpointSlice read here. */
export interface EndpointSliceObject {
  metadata?: { namespace?: string; labels?: Record<string, string> };
  endpoints?: { nodeName?: string; conditions?: { ready?: boolean | null } }[] | null;
}

/**
 * Per Service ("namespace/name"): the nodes with a ready endpoint, from its EndpointSlices
 * (label kubernetes.io/service-name). A missing ready condition means ready (the API's rule);
 * terminating endpoints are not ready, so a node whose last pod is going away stops taking
 * new connections while its established ones finish.
 */
export function readyEndpointNodes(slices: readonly EndpointSliceObject[]): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const sl of slices) {
    const svc = sl.metadata?.labels?.['kubernetes.io/service-name'];
    if (!svc || !sl.metadata?.namespace) continue;
    const key = `${sl.metadata.namespace}/${svc}`;
    const nodes = out.get(key) ?? new Set<string>();
    for (const e of sl.endpoints ?? []) if (e.nodeName && e.conditions?.ready !== false) nodes.add(e.nodeName);
    out.set(key, nodes);
  }
  return new Map([...out].map(([k, v]) => [k, [...v].sort()]));
}

/**
 * The endpoint nodes of each Local Service that kube-proxy already serves it on: a node is
 * kept once its kube-proxy answered 200 on the Service's healthCheckNodePort (see
 * kube-proxy-health.ts), dropped while it answers otherwise or was not asked yet. Services
 * without a healthCheckNodePort (not Local, or a cluster that allocates none) keep the
 * EndpointSlices' list. `targets` lists the probes the lists depend on.
 */
export function kubeProxyReadyNodes(
  readyNodes: ReadonlyMap<string, readonly string[]>,
  services: readonly ServiceObject[],
  nodeAddresses: ReadonlyMap<string, string>,
  ready: (service: string, node: string) => boolean | undefined,
): { nodes: Map<string, string[]>; targets: ProxyHealthTarget[] } {
  const nodes = new Map<string, string[]>([...readyNodes].map(([k, v]) => [k, [...v]]));
  const targets: ProxyHealthTarget[] = [];
  for (const svc of services) {
    const port = svc.spec?.healthCheckNodePort;
    if (svc.spec?.externalTrafficPolicy !== 'Local' || !port) continue;
    const key = `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;
    const here = readyNodes.get(key);
    if (!here) continue;
    const kept: string[] = [];
    for (const node of here) {
      const address = nodeAddresses.get(node);
      if (!address) continue;
      targets.push({ service: key, node, address, port });
      if (ready(key, node) === true) kept.push(node);
    }
    nodes.set(key, kept);
  }
  return { nodes, targets };
}

/**
 * The farms' pools. `lastValid` remembers each farm's last valid pool, so a farm whose spec
 * turned invalid is frozen with it rather than taking its Services' addresses away.
 */
export function farmPools(farms: readonly FarmCluster[], lastValid: Map<string, FarmPool>): FarmPool[] {
  const out: FarmPool[] = [];
  for (const fc of farms) {
    const name = fc.metadata?.name;
    if (!name || !fc.metadata?.namespace || fc.metadata.deletionTimestamp) continue;
    const key = `${fc.metadata.namespace}/${name}`;
    // An invalid spec is reported on the FarmCluster by its reconcile.
    const r = parseFarmSpec(fc.spec, { name });
    if (r.ok) {
      const pool = { key, ...r.value.loadBalancer };
      lastValid.set(key, pool);
      out.push(pool);
    } else out.push({ ...(lastValid.get(key) ?? { key, addresses: [], servicesWithoutClass: false }), frozen: true });
  }
  return out;
}

function heldByUs(s: ServiceObject): boolean {
  return (s.metadata?.managedFields ?? []).some((m) => m.manager === FIELD_MANAGER && m.subresource === 'status' && JSON.stringify(m.fieldsV1 ?? {}).includes('f:loadBalancer'));
}

export function serviceView(s: ServiceObject): ServiceView {
  const ns = s.metadata?.namespace ?? '';
  const created = s.metadata?.creationTimestamp;
  const spec = s.spec ?? {};
  return {
    key: `${ns}/${s.metadata?.name ?? ''}`,
    namespace: ns,
    created: created instanceof Date ? created.toISOString() : created ?? '',
    annotations: s.metadata?.annotations ?? {},
    type: spec.type,
    loadBalancerClass: spec.loadBalancerClass,
    loadBalancerIP: spec.loadBalancerIP,
    sessionAffinity: spec.sessionAffinity,
    externalTrafficPolicy: spec.externalTrafficPolicy,
    ipFamilies: spec.ipFamilies,
    ipFamilyPolicy: spec.ipFamilyPolicy,
    ports: (spec.ports ?? []).map((p) => ({ port: p.port, protocol: p.protocol })),
    ingressIPs: (s.status?.loadBalancer?.ingress ?? []).flatMap((i) => (i.ip ? [i.ip] : [])),
    heldByUs: heldByUs(s),
  };
}

/** Its own field manager: the farm reconciler's status apply must not remove status.services. */
export const SERVICES_FIELD_MANAGER = 'vipfarm-operator-services';

export class ServiceSync {
  /** per Service uid: the last Event recorded, so a refusal is reported once, not every sync */
  private readonly reported = new Map<string, string>();
  private addresses = new Map<string, ServiceAddress[]>();
  private readonly lastValid = new Map<string, FarmPool>();
  /** per farm: the status.services last written */
  private readonly published = new Map<string, string>();

  constructor(
    private readonly kube: Pick<Kube, 'apply'>,
    private readonly events: EventRecorder,
    private readonly log: Logger,
    /** kube-proxy's per-Service health on each node; absent: the EndpointSlices alone decide */
    private readonly proxyHealth?: ProxyHealth,
  ) {}

  /** What each farm ("namespace/name") serves for Services after the last sync. */
  farmAddresses(farm: string): ServiceAddress[] {
    return this.addresses.get(farm) ?? [];
  }

  /** `nodeAddresses`: node name -> address kube-proxy's health checks are probed on */
  async sync(farms: readonly FarmCluster[], services: readonly ServiceObject[], slices: readonly EndpointSliceObject[] = [], nodeAddresses: ReadonlyMap<string, string> = new Map()): Promise<void> {
    const pools = farmPools(farms, this.lastValid);
    const decisions = allocate(pools, services.map(serviceView));
    let readyNodes = readyEndpointNodes(slices);
    if (this.proxyHealth) {
      const health = this.proxyHealth;
      const k = kubeProxyReadyNodes(readyNodes, services, nodeAddresses, (svc, node) => health.ready(svc, node));
      health.setTargets(k.targets);
      readyNodes = k.nodes;
    }
    const errors: string[] = [];
    // The farms first: an address is served before a Service announces it, and no longer
    // served before the announcement is withdrawn.
    const addresses = new Map<string, ServiceAddress[]>();
    for (const p of pools) addresses.set(p.key, farmServiceAddresses(p.key, decisions, readyNodes));
    for (const [farm, list] of addresses) {
      const body = JSON.stringify(list);
      if (this.published.get(farm) === body) continue;
      const [namespace, name] = farm.split('/') as [string, string];
      try {
        await this.kube.apply(
          { apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, metadata: { name, namespace }, status: { services: list } },
          SERVICES_FIELD_MANAGER,
          { subresource: 'status' },
        );
        this.published.set(farm, body);
        this.log.info('farm service addresses published', {
          event: 'farm_services_published', farm, ips: list.map((a) => a.ip),
          local: Object.fromEntries(list.filter((a) => a.nodes).map((a) => [a.ip, a.nodes])),
        });
      } catch (err) {
        // Not serving what is announced would black-hole it: the Services wait for the retry.
        throw new Error(`could not publish the service addresses of FarmCluster ${farm}: ${(err as Error).message}`);
      }
    }
    this.addresses = addresses;
    const live = new Set<string>();
    for (const s of services) {
      const uid = s.metadata?.uid ?? '';
      live.add(uid);
      const view = serviceView(s);
      const d = decisions.get(view.key);
      if (!d) continue;
      try {
        await this.act(s, view, d);
      } catch (err) {
        errors.push(`${view.key}: ${(err as Error).message}`);
      }
    }
    for (const uid of this.reported.keys()) if (!live.has(uid)) this.reported.delete(uid);
    for (const farm of this.published.keys()) if (!addresses.has(farm)) this.published.delete(farm);
    if (errors.length > 0) throw new Error(`could not write Service status: ${errors.join('; ')}`);
  }

  private async act(s: ServiceObject, view: ServiceView, d: Decision): Promise<void> {
    const ingress = s.status?.loadBalancer?.ingress ?? [];
    if (d.kind === 'ignore') return;
    if (d.kind === 'allocated') {
      const current =
        ingress.length === d.ips.length && d.ips.every((ip, i) => ingress[i]!.ip === ip && ingress[i]!.ipMode === 'VIP') && view.heldByUs;
      // Only a write is news: after a restart the kept addresses are not announced again.
      if (current) return void this.reported.set(s.metadata?.uid ?? '', 'allocated');
      await this.writeStatus(s, d.ips.map((ip) => ({ ip, ipMode: 'VIP' })));
      this.log.info('service address allocated', { event: 'service_allocated', service: view.key, farm: d.farm, ip: d.ips.join(',') });
      await this.report(s, 'Normal', 'AddressAllocated', `${d.ips.join(', ')} from FarmCluster ${d.farm}`);
      return;
    }
    if (view.heldByUs && ingress.length > 0) {
      await this.writeStatus(s, undefined);
      this.log.info('service address released', { event: 'service_released', service: view.key, ip: view.ingressIPs.join(','), reason: d.kind === 'refused' ? d.reason : 'not ours' });
    }
    if (d.kind === 'refused') {
      await this.report(s, 'Warning', d.reason, d.message);
      this.log.warn('service address refused', { event: 'service_refused', service: view.key, reason: d.reason, message: d.message });
    } else {
      await this.report(s, 'Normal', 'AddressReleased', `${view.ingressIPs.join(', ')} released`);
    }
  }

  private async writeStatus(s: ServiceObject, ingress: { ip: string; ipMode: string }[] | undefined): Promise<void> {
    const body = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.metadata!.name, namespace: s.metadata!.namespace },
      // Applying no loadBalancer field gives up ours: the API server removes what only we owned.
      status: ingress ? { loadBalancer: { ingress } } : {},
    };
    await this.kube.apply(body, FIELD_MANAGER, { subresource: 'status' });
  }

  private async report(s: ServiceObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const uid = s.metadata?.uid ?? '';
    const key = `${type}/${reason}/${message}`;
    if (this.reported.get(uid) === key) return;
    this.reported.set(uid, key);
    await this.events.record({ apiVersion: 'v1', kind: 'Service', metadata: s.metadata as FarmCluster['metadata'] }, type, reason, message);
  }
}
