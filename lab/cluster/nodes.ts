// Node objects for the test hosts (network namespaces): what a kubelet would register,
// with a Ready condition whose heartbeat is kept fresh.
import * as k8s from '@kubernetes/client-node';

export interface NodeSpec {
  name: string;
  /** The host's address: status.addresses InternalIP, and the pods' hostIP/podIP. */
  ip: string;
  labels?: Record<string, string>;
}

export interface RegisteredNodes {
  names: string[];
  stop(): void;
}

export const NODE_CAPACITY = { cpu: '4', memory: '8Gi', pods: '110' };
export const KUBELET_VERSION = 'vipfarm-test-kubelet';

export function nodeObject(spec: NodeSpec): k8s.V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      labels: {
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
        ...spec.labels,
      },
    },
    spec: {},
  };
}

export function nodeStatus(spec: NodeSpec, now: Date): k8s.V1NodeStatus {
  const ready: k8s.V1NodeCondition = {
    type: 'Ready',
    status: 'True',
    reason: 'KubeletReady',
    message: 'vipfarm test kubelet is posting ready status',
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  };
  return {
    addresses: [
      { type: 'InternalIP', address: spec.ip },
      { type: 'Hostname', address: spec.name },
    ],
    capacity: { ...NODE_CAPACITY },
    allocatable: { ...NODE_CAPACITY },
    conditions: [ready],
    nodeInfo: {
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      bootID: '',
      containerRuntimeVersion: 'vipfarm-test://0',
      kernelVersion: '',
      kubeProxyVersion: '',
      kubeletVersion: KUBELET_VERSION,
      machineID: '',
      operatingSystem: 'linux',
      osImage: 'network namespace',
      systemUUID: '',
    },
  };
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const statusPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

async function postStatus(core: k8s.CoreV1Api, spec: NodeSpec, first: boolean, transition: Date): Promise<void> {
  const status = nodeStatus(spec, new Date());
  // Keep the first transition time, or every heartbeat would look like a flap.
  if (!first) status.conditions![0].lastTransitionTime = transition;
  await core.patchNodeStatus({ name: spec.name, body: { status } }, statusPatch);
}

/** Creates (or takes over) the Node objects, marks them Ready, refreshes every intervalMs. */
export async function registerNodes(kc: k8s.KubeConfig, specs: NodeSpec[], intervalMs = 10_000): Promise<RegisteredNodes> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const since = new Date();
  for (const spec of specs) {
    try {
      await core.createNode({ body: nodeObject(spec) });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw new Error(`creating node ${spec.name}`, { cause: err });
    }
    await postStatus(core, spec, true, since);
    // Admission (TaintNodesByCondition) taints new nodes not-ready; the node lifecycle
    // controller would lift it once Ready, and we do not run that controller.
    await core.patchNode({ name: spec.name, body: { spec: { taints: null } } }, mergePatch);
  }
  const timer = setInterval(() => {
    for (const spec of specs) postStatus(core, spec, false, since).catch(() => undefined);
  }, intervalMs);
  timer.unref();
  return { names: specs.map((s) => s.name), stop: () => clearInterval(timer) };
}
