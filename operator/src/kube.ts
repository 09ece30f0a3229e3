// A small REST client for the few calls the operator makes, over node's https with the
// credentials of a @kubernetes/client-node KubeConfig. Server-side apply needs
// application/apply-patch+yaml on arbitrary paths including /status subresources, which
// is simplest as a raw request (KubernetesObjectApi.patch cannot address subresources).
import https from 'node:https';
import http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_KIND, FARMCLUSTER_PLURAL } from '../../common/src/farmcluster-types.js';
/** The least an object needs to be addressed. */
export interface ApiObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string };
  [field: string]: unknown;
}

/** apiVersion/kind -> resource plural, for the kinds vipfarm touches. */
const PLURALS: Record<string, string> = {
  'v1/ServiceAccount': 'serviceaccounts',
  'v1/Secret': 'secrets',
  'v1/Service': 'services',
  'v1/Pod': 'pods',
  'v1/Event': 'events',
  'v1/Node': 'nodes',
  'v1/Namespace': 'namespaces',
  'apps/v1/DaemonSet': 'daemonsets',
  'apps/v1/Deployment': 'deployments',
  'discovery.k8s.io/v1/EndpointSlice': 'endpointslices',
  'rbac.authorization.k8s.io/v1/Role': 'roles',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'rolebindings',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'clusterroles',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'clusterrolebindings',
  'coordination.k8s.io/v1/Lease': 'leases',
  [`${FARMCLUSTER_API_VERSION}/${FARMCLUSTER_KIND}`]: FARMCLUSTER_PLURAL,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': 'customresourcedefinitions',
};

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name?: string;
}

/** REST path of a collection (no name) or an object, optionally a subresource. */
export function resourcePath(ref: ObjectRef, subresource?: string): string {
  const plural = PLURALS[`${ref.apiVersion}/${ref.kind}`];
  if (!plural) throw new Error(`unknown kind ${ref.apiVersion}/${ref.kind}`);
  const base = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : '';
  const name = ref.name ? `/${encodeURIComponent(ref.name)}` : '';
  return `${base}${ns}/${plural}${name}${subresource && ref.name ? `/${subresource}` : ''}`;
}

export function refOf(o: ApiObject): ObjectRef {
  return { apiVersion: o.apiVersion, kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name };
}

/** An API error with its HTTP status and the server's Status reason and message. */
export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${status} ${reason}: ${message}`);
    this.name = 'KubeError';
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeError && e.status === 409;

export interface ListResult<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string };
  items: T[];
}

export class Kube {
  constructor(private readonly kc: KubeConfig) {}

  async request<T>(method: string, path: string, opts: { body?: unknown; contentType?: string; query?: Record<string, string | undefined> } = {}): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const reqOpts: https.RequestOptions = { method, headers: { Accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(reqOpts);
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (body !== undefined) {
      reqOpts.headers = { ...(reqOpts.headers as Record<string, string>), 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': String(Buffer.byteLength(body)) };
    }
    const mod = url.protocol === 'http:' ? http : https;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = mod.request(url, { ...reqOpts, timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', (err) => reject(new Error(`${method} ${path}: ${err.message}`, { cause: err })));
      req.end(body);
    });
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status >= 300) {
      const s = (parsed ?? {}) as { reason?: string; message?: string };
      throw new KubeError(status, s.reason ?? 'Unknown', s.message ?? text.slice(0, 500), method, path);
    }
    return parsed as T;
  }

  /** Collection path, for watches. */
  collectionPath(ref: ObjectRef): string {
    return resourcePath({ ...ref, name: undefined });
  }

  async get<T>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', resourcePath(ref));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  list<T>(ref: ObjectRef, query: { labelSelector?: string; fieldSelector?: string } = {}): Promise<ListResult<T>> {
    return this.request<ListResult<T>>('GET', resourcePath({ ...ref, name: undefined }), { query });
  }

  create<T>(obj: ApiObject): Promise<T> {
    return this.request<T>('POST', resourcePath({ ...refOf(obj), name: undefined }), { body: obj });
  }

  /** PUT: with metadata.resourceVersion it fails with 409 on a concurrent change. */
  replace<T>(obj: ApiObject, subresource?: string): Promise<T> {
    return this.request<T>('PUT', resourcePath(refOf(obj), subresource), { body: obj });
  }

  /** Server-side apply: the object's fields are owned by `fieldManager`; force takes them over. */
  apply<T>(obj: ApiObject, fieldManager: string, opts: { subresource?: string; force?: boolean } = {}): Promise<T> {
    return this.request<T>('PATCH', resourcePath(refOf(obj), opts.subresource), {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: opts.force === false ? undefined : 'true' },
    });
  }

  jsonPatch<T>(ref: ObjectRef, ops: unknown[], subresource?: string): Promise<T> {
    return this.request<T>('PATCH', resourcePath(ref, subresource), { body: ops, contentType: 'application/json-patch+json' });
  }

  /** Deletes; true when it existed. */
  async delete(ref: ObjectRef, propagationPolicy: 'Foreground' | 'Background' | 'Orphan' = 'Background'): Promise<boolean> {
    try {
      await this.request('DELETE', resourcePath(ref), { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy } });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }
}
