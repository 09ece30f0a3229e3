// A real Kubernetes control plane on 127.0.0.1 for tests and the demo: etcd,
// kube-apiserver (RBAC on), kube-controller-manager, kube-scheduler, built by build.sh.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { findBinDir } from './binaries.js';
import { createPki, type Pki } from './pki.js';
import { freePorts } from './ports.js';
import { startProc, type Proc } from './procs.js';
import type { IPFamily } from '../../common/src/config/syntax.js';

const execFileP = promisify(execFile);

/** Controllers a DaemonSet/Deployment based operator needs; only these run. */
export const CONTROLLERS = [
  'daemonset-controller',
  'deployment-controller',
  'replicaset-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
];

export const SERVICE_CIDR = '10.0.0.0/24';
/** The Service range of each family, and its first address (the `kubernetes` Service's). */
export const SERVICE_CIDRS: Readonly<Record<IPFamily, string>> = { ipv4: SERVICE_CIDR, ipv6: 'fd00:10:96::/112' };
export const KUBERNETES_SERVICE_IPS: Readonly<Record<IPFamily, string>> = { ipv4: '10.0.0.1', ipv6: 'fd00:10:96::1' };

export interface ControlPlaneOptions {
  /** Seconds to wait for readiness (the first start on a loaded machine is slow). */
  readyTimeoutSec?: number;
  /** Keep the temp dir (logs) after stop(), for debugging. */
  keepDir?: boolean;
  /**
   * An address the nodes reach the apiserver at (a relay there, realnodes.ts): the apiserver
   * advertises it, so it is the `kubernetes` Service's endpoint (kept by the lease
   * reconciler), and it is in the serving certificate. Without it no endpoint is kept.
   */
  advertiseAddress?: string;
  /** Unix socket of an HTTP CONNECT proxy through which the apiserver dials kubelets (egress "cluster"). */
  egressProxySocket?: string;
  /** Controllers besides CONTROLLERS (real nodes need node-lifecycle-controller). */
  extraControllers?: string[];
  /** More kube-controller-manager flags (e.g. --node-monitor-grace-period). */
  controllerManagerArgs?: string[];
  /**
   * The cluster's address families, primary first (default ['ipv4']): a Service range per
   * family (SERVICE_CIDRS); the `kubernetes` Service is of the primary one, so
   * advertiseAddress must be of that family too.
   */
  families?: readonly IPFamily[];
}

export interface ControlPlane {
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  port: number;
  binDir: string;
  /** Temp dir with certs, etcd data, logs (<component>.log). */
  dir: string;
  pki: Pki;
  kubeConfig: k8s.KubeConfig;
  /** Process ids of etcd and the Kubernetes components, by name. */
  pids: Record<string, number>;
  /** Runs kubectl against this control plane; rejects with its stderr on failure. */
  kubectl(args: string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

/** The egress selector configuration that sends the apiserver's traffic to nodes through an HTTP CONNECT proxy. */
export function egressSelectorYaml(socket: string): string {
  return [
    'apiVersion: apiserver.k8s.io/v1beta1',
    'kind: EgressSelectorConfiguration',
    'egressSelections:',
    '- name: cluster',
    '  connection:',
    '    proxyProtocol: HTTPConnect',
    '    transport:',
    '      uds:',
    `        udsName: ${socket}`,
    '',
  ].join('\n');
}

export function kubeconfigYaml(server: string, pki: Pick<Pki, 'caCert' | 'adminCert' | 'adminKey'>): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: vipfarm-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority: ${pki.caCert}`,
    'users:',
    '- name: vipfarm-admin',
    '  user:',
    `    client-certificate: ${pki.adminCert}`,
    `    client-key: ${pki.adminKey}`,
    'contexts:',
    '- name: vipfarm-test',
    '  context:',
    '    cluster: vipfarm-test',
    '    user: vipfarm-admin',
    '    namespace: default',
    'current-context: vipfarm-test',
    '',
  ].join('\n');
}

function logTail(file: string, lines = 25): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

function readyz(port: number, pki: Pki): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path: '/readyz',
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 2000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns true; fails early if one of procs exits. */
async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number, procs: Proc[], dir: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = procs.find((p) => p.exitCode !== null);
    if (dead) {
      throw new Error(`${dead.name} exited (${dead.exitCode}) while waiting for ${what}; last log lines:\n${logTail(path.join(dir, `${dead.name}.log`))}`);
    }
    if (await fn()) return;
    if (Date.now() > deadline) {
      const tails = procs.map((p) => `--- ${p.name}.log\n${logTail(path.join(dir, `${p.name}.log`), 10)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}\n${tails}`);
    }
    await sleep(300);
  }
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = findBinDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-cp-'));
  const procs: Proc[] = [];
  let stopped = false;
  const keepDir = opts.keepDir ?? process.env.VIPFARM_KEEP_CP === '1';
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', removeDirOnExit);
    // Reverse order: clients of the apiserver first, etcd last.
    for (const p of [...procs].reverse()) await p.stop(5000);
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };
  const removeDirOnExit = (): void => {
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', removeDirOnExit);

  try {
    const families = opts.families ?? ['ipv4'];
    const pki = createPki(dir, ['127.0.0.1', ...families.map((f) => KUBERNETES_SERVICE_IPS[f]), ...(opts.advertiseAddress ? [opts.advertiseAddress] : [])]);
    const [etcdPort, peerPort, apiPort] = await freePorts(3);
    const bin = (n: string): string => path.join(binDir, n);
    const log = (n: string): string => path.join(dir, `${n}.log`);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;

    procs.push(startProc('etcd', bin('etcd'), [
      '--name=vf', `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=vf=${peerUrl}`, '--unsafe-no-fsync', '--log-level=warn',
    ], log('etcd')));
    const timeoutMs = (opts.readyTimeoutSec ?? 120) * 1000;
    // The apiserver would start anyway and retry, but its log fills with dial errors.
    await waitFor('etcd /health', async () => {
      try {
        return (await fetch(`${etcdUrl}/health`)).ok;
      } catch {
        return false;
      }
    }, timeoutMs, procs, dir);

    const egress: string[] = [];
    if (opts.egressProxySocket) {
      writeFileSync(path.join(dir, 'egress.yaml'), egressSelectorYaml(opts.egressProxySocket));
      egress.push(`--egress-selector-config-file=${path.join(dir, 'egress.yaml')}`);
    }
    procs.push(startProc('kube-apiserver', bin('kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1', `--advertise-address=${opts.advertiseAddress ?? '127.0.0.1'}`, `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.serverCert}`, `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--service-cluster-ip-range=${families.map((f) => SERVICE_CIDRS[f]).join(',')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPub}`, `--service-account-signing-key-file=${pki.saKey}`,
      '--authorization-mode=RBAC', '--allow-privileged=true',
      // kubectl logs/exec: to a kubelet's InternalIP (through the egress proxy, realnodes.ts)
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      `--kubelet-certificate-authority=${pki.caCert}`,
      `--kubelet-client-certificate=${pki.adminCert}`, `--kubelet-client-key=${pki.adminKey}`,
      // Without an address the nodes reach, the kubernetes Service has no useful endpoint.
      `--endpoint-reconciler-type=${opts.advertiseAddress ? 'lease' : 'none'}`,
      ...egress,
      '--v=1',
    ], log('kube-apiserver')));

    const kubeconfigPath = path.join(dir, 'admin.kubeconfig');
    const server = `https://127.0.0.1:${apiPort}`;
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, pki));
    await waitFor('kube-apiserver /readyz', async () => (await readyz(apiPort, pki)) === 200, timeoutMs, procs, dir);

    procs.push(startProc('kube-controller-manager', bin('kube-controller-manager'), [
      `--kubeconfig=${kubeconfigPath}`, '--leader-elect=false', '--secure-port=0',
      `--controllers=${[...CONTROLLERS, ...(opts.extraControllers ?? [])].join(',')}`,
      `--service-account-private-key-file=${pki.saKey}`, `--root-ca-file=${pki.caCert}`,
      ...(opts.controllerManagerArgs ?? []),
      '--v=1',
    ], log('kube-controller-manager')));
    procs.push(startProc('kube-scheduler', bin('kube-scheduler'), [
      `--kubeconfig=${kubeconfigPath}`, '--leader-elect=false', '--secure-port=0', '--v=1',
    ], log('kube-scheduler')));

    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    // The default ServiceAccount appears once the controller manager runs: pods can be made.
    await waitFor('the default ServiceAccount (kube-controller-manager up)', async () => {
      try {
        await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
        return true;
      } catch {
        return false;
      }
    }, timeoutMs, procs, dir);

    const kubectl = async (args: string[], input?: string): Promise<string> => {
      const run = execFileP(bin('kubectl'), [`--kubeconfig=${kubeconfigPath}`, ...args], { encoding: 'utf8' });
      run.child.stdin?.end(input ?? '');
      try {
        return (await run).stdout;
      } catch (err) {
        const e = err as { stderr?: string; stdout?: string; code?: number };
        throw new Error(`kubectl ${args.join(' ')} failed (exit ${e.code}): ${e.stderr?.trim() || e.stdout?.trim()}`, { cause: err });
      }
    };

    const pids = Object.fromEntries(procs.map((p) => [p.name, p.pid]));
    return { kubeconfigPath, server, port: apiPort, binDir, dir, pki, kubeConfig, pids, kubectl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
