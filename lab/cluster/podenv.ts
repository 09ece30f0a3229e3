// How the test kubelet turns a pod spec into a process: environment (values, downward API,
// secret/configMap references, $(VAR) expansion), argv, and volume files. Pure functions.
import type * as k8s from '@kubernetes/client-node';

export interface PodContext {
  nodeName: string;
  hostIP: string;
  podIP: string;
  /** Secrets and ConfigMaps of the pod's namespace, by name, values decoded. */
  secrets: Record<string, Record<string, string>>;
  configMaps: Record<string, Record<string, string>>;
}

/** Names of the Secrets and ConfigMaps a pod reads (env, envFrom, volumes), to fetch first. */
export function referencedObjects(pod: k8s.V1Pod): { secrets: string[]; configMaps: string[] } {
  const refs = { secrets: new Set<string>(), configMaps: new Set<string>() };
  for (const c of pod.spec?.containers ?? []) containerRefs(c, refs);
  for (const v of pod.spec?.volumes ?? []) {
    if (v.secret?.secretName) refs.secrets.add(v.secret.secretName);
    if (v.configMap?.name) refs.configMaps.add(v.configMap.name);
  }
  return { secrets: [...refs.secrets].sort(), configMaps: [...refs.configMaps].sort() };
}

function containerRefs(c: k8s.V1Container, refs: { secrets: Set<string>; configMaps: Set<string> }): void {
  for (const e of c.env ?? []) {
    if (e.valueFrom?.secretKeyRef?.name) refs.secrets.add(e.valueFrom.secretKeyRef.name);
    if (e.valueFrom?.configMapKeyRef?.name) refs.configMaps.add(e.valueFrom.configMapKeyRef.name);
  }
  for (const f of c.envFrom ?? []) {
    if (f.secretRef?.name) refs.secrets.add(f.secretRef.name);
    if (f.configMapRef?.name) refs.configMaps.add(f.configMapRef.name);
  }
}

/** metadata.labels['a'] -> ['labels', 'a'] */
function mapKey(path: string, prefix: string): string | undefined {
  const m = new RegExp(`^metadata\\.${prefix}\\['(.+)'\\]$`).exec(path);
  return m?.[1];
}

/** The downward API's fixed field paths. */
const FIELDS: Record<string, (pod: k8s.V1Pod, ctx: PodContext) => string> = {
  'metadata.name': (pod) => pod.metadata?.name ?? '',
  'metadata.namespace': (pod) => pod.metadata?.namespace ?? '',
  'metadata.uid': (pod) => pod.metadata?.uid ?? '',
  'spec.nodeName': (_pod, ctx) => ctx.nodeName,
  'spec.serviceAccountName': (pod) => pod.spec?.serviceAccountName ?? 'default',
  'status.hostIP': (_pod, ctx) => ctx.hostIP,
  'status.hostIPs': (_pod, ctx) => ctx.hostIP,
  'status.podIP': (_pod, ctx) => ctx.podIP,
  'status.podIPs': (_pod, ctx) => ctx.podIP,
};

export function fieldRefValue(pod: k8s.V1Pod, fieldPath: string, ctx: PodContext): string {
  const field = Object.prototype.hasOwnProperty.call(FIELDS, fieldPath) ? FIELDS[fieldPath] : undefined;
  if (field) return field(pod, ctx);
  const label = mapKey(fieldPath, 'labels');
  if (label !== undefined) return pod.metadata?.labels?.[label] ?? '';
  const annotation = mapKey(fieldPath, 'annotations');
  if (annotation !== undefined) return pod.metadata?.annotations?.[annotation] ?? '';
  throw new Error(`fieldRef ${fieldPath} is not supported by the test kubelet`);
}

/**
 * Kubernetes' $(VAR) expansion: a defined VAR is replaced, an undefined one is left as
 * written, $$ escapes a dollar.
 */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.prototype.hasOwnProperty.call(env, name) ? env[name] : whole;
  });
}

function keyRef(kind: 'secret' | 'configMap', objects: Record<string, Record<string, string>>, name: string, key: string, optional: boolean | undefined): string | undefined {
  const obj = objects[name];
  if (obj === undefined) {
    if (optional) return undefined;
    throw new Error(`${kind} "${name}" not found`);
  }
  if (!(key in obj)) {
    if (optional) return undefined;
    throw new Error(`key "${key}" not found in ${kind} "${name}"`);
  }
  return obj[key];
}

/**
 * The container's environment on top of base (the kubelet's own variables): envFrom
 * first, then env in order, each value expanded against what came before.
 */
export function resolveEnv(pod: k8s.V1Pod, container: k8s.V1Container, ctx: PodContext, base: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...base };
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    const [kind, ref, objects] = from.secretRef
      ? (['secret', from.secretRef, ctx.secrets] as const)
      : (['configMap', from.configMapRef!, ctx.configMaps] as const);
    const obj = objects[ref.name ?? ''];
    if (obj === undefined) {
      if (ref.optional) continue;
      throw new Error(`${kind} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(obj)) env[prefix + k] = v;
  }
  for (const e of container.env ?? []) {
    let value: string | undefined;
    const from = e.valueFrom;
    if (!from) value = expandVars(e.value ?? '', env);
    else if (from.fieldRef) value = fieldRefValue(pod, from.fieldRef.fieldPath, ctx);
    else if (from.secretKeyRef) value = keyRef('secret', ctx.secrets, from.secretKeyRef.name ?? '', from.secretKeyRef.key, from.secretKeyRef.optional);
    else if (from.configMapKeyRef) value = keyRef('configMap', ctx.configMaps, from.configMapKeyRef.name ?? '', from.configMapKeyRef.key, from.configMapKeyRef.optional);
    else throw new Error(`env ${e.name}: only value, fieldRef, secretKeyRef and configMapKeyRef are supported by the test kubelet`);
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}

/** command + args with $(VAR) expanded; the test kubelet runs no images, so command is required. */
export function containerArgv(container: k8s.V1Container, env: Record<string, string>): string[] {
  if (!container.command || container.command.length === 0) {
    throw new Error(`container ${container.name} has no command: the test kubelet runs commands, not images`);
  }
  return [...container.command, ...(container.args ?? [])].map((a) => expandVars(a, env));
}

/**
 * Files of the pod's secret and configMap volumes: volume name -> (relative path -> content).
 * Other volume kinds are skipped (the service-account token has its own directory).
 */
export function volumeFiles(pod: k8s.V1Pod, ctx: PodContext): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const v of pod.spec?.volumes ?? []) {
    const src = v.secret
      ? { kind: 'secret', name: v.secret.secretName ?? '', items: v.secret.items, optional: v.secret.optional, objects: ctx.secrets }
      : v.configMap
        ? { kind: 'configMap', name: v.configMap.name ?? '', items: v.configMap.items, optional: v.configMap.optional, objects: ctx.configMaps }
        : undefined;
    if (!src) continue;
    const data = src.objects[src.name];
    if (data === undefined) {
      if (src.optional) {
        out[v.name] = {};
        continue;
      }
      throw new Error(`volume ${v.name}: ${src.kind} "${src.name}" not found`);
    }
    const files: Record<string, string> = {};
    if (src.items && src.items.length > 0) {
      for (const item of src.items) {
        if (!(item.key in data)) throw new Error(`volume ${v.name}: key "${item.key}" not in ${src.kind} "${src.name}"`);
        files[safeRelative(item.path)] = data[item.key];
      }
    } else {
      for (const [k, val] of Object.entries(data)) files[safeRelative(k)] = val;
    }
    out[v.name] = files;
  }
  return out;
}

function safeRelative(p: string): string {
  if (p.startsWith('/') || p.split('/').includes('..')) throw new Error(`volume path ${JSON.stringify(p)} escapes its volume`);
  return p;
}

/**
 * mountPath -> host directory for the container's secret/configMap mounts: the process
 * cannot see them at mountPath (no mount namespace), so it gets this map as JSON in
 * VIPFARM_MOUNTS and looks its files up there.
 */
export function mountMap(container: k8s.V1Container, volumeDirs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of container.volumeMounts ?? []) {
    const dir = volumeDirs[m.name];
    if (dir === undefined) continue;
    out[m.mountPath] = m.subPath ? `${dir}/${safeRelative(m.subPath)}` : dir;
  }
  return out;
}
