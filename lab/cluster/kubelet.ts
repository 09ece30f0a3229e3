// A test kubelet: for pods bound to its nodes it runs each container's command as a real
// process, inside the node's network namespace (ip netns exec) or in the host namespace,
// reports phase and readiness, and stops the process when the pod is deleted. It runs no
// images and makes no mount namespaces; see README.md beside this file for what a
// process gets instead (VIPFARM_SA_ROOT, VIPFARM_MOUNTS, ...).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import winston from 'winston';
import { repoRoot } from './binaries.js';
import type { ControlPlane } from './controlplane.js';
import type { NodeSpec } from './nodes.js';
import { containerArgv, mountMap, referencedObjects, resolveEnv, volumeFiles, type PodContext } from './podenv.js';
import { startLogServer, type LogServer } from './logserver.js';
import { runProbe, type ProbeRequest, type ProbeResult } from './probe.js';
import { startProc, type Proc } from './procs.js';

const execFileP = promisify(execFile);

export interface KubeletNode extends NodeSpec {
  /** Network namespace the node's pods run in; null = the host namespace. */
  netns: string | null;
  /** a dual-stack node's address of the other family: the pods' second status.hostIPs entry */
  otherIP?: string;
}

export interface KubeletOptions {
  controlPlane: Pick<ControlPlane, 'kubeConfig' | 'port' | 'pki'>;
  nodes: KubeletNode[];
  /** Working directory of the processes (default: the repo root, so `node dist/...` works). */
  cwd?: string;
  /** Extra environment for every process (e.g. VIPFARM_LOG_LEVEL). */
  env?: Record<string, string>;
}

export interface RunningContainer {
  namespace: string;
  pod: string;
  uid: string;
  node: string;
  netns: string | null;
  container: string;
  pid: number;
  logPath: string;
}

export interface Kubelet {
  dir: string;
  /** Containers whose process is running now. */
  running(): RunningContainer[];
  /** Path of a container's stdout+stderr log (the latest pod of that name). */
  logPath(namespace: string, pod: string, container: string): string | undefined;
  stop(): Promise<void>;
}

const TOKEN_SECONDS = 3600;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// A JSON merge patch replaces lists whole: with a strategic merge, a container's old
// state (waiting) would be merged into its new one (running) instead of replaced.
const statusPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function decode(data: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

function writeAtomic(file: string, content: string, mode = 0o600): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, file);
}

/** API calls of the pod set-up must not hang it: a timeout turns into a retry. */
function withTimeout<T>(what: string, p: Promise<T>, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function httpStatus(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

/** Per-namespace helper process (API relay and probes), started on first use. */
class NetnsHelper {
  private proc?: Proc;
  private starting?: Promise<void>;
  readonly probeSock: string;

  constructor(
    readonly netns: string,
    private readonly kubelet: TestKubelet,
  ) {
    this.probeSock = path.join(kubelet.dir, `ns-${netns}.probe.sock`);
  }

  ensure(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) return Promise.resolve();
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<void> {
    // A fresh namespace has lo down, and the relay listens on its 127.0.0.1.
    execFileSync('ip', ['-n', this.netns, 'link', 'set', 'lo', 'up']);
    rmSync(this.probeSock, { force: true });
    const script = path.join(repoRoot(), 'dist/lab/cluster/nshelper.js');
    this.proc = startProc(`nshelper-${this.netns}`, 'ip', [
      'netns', 'exec', this.netns, process.execPath, script, String(this.kubelet.apiPort), this.kubelet.relaySock, this.probeSock,
    ], path.join(this.kubelet.dir, `ns-${this.netns}.log`));
    const deadline = Date.now() + 15_000;
    while (!existsSync(this.probeSock)) {
      if (this.proc.exitCode !== null) throw new Error(`nshelper in ${this.netns} exited (${this.proc.exitCode}): ${readFileSync(path.join(this.kubelet.dir, `ns-${this.netns}.log`), 'utf8')}`);
      if (Date.now() > deadline) throw new Error(`nshelper in ${this.netns} did not start`);
      await sleep(50);
    }
  }

  probe(req: ProbeRequest): Promise<ProbeResult> {
    return new Promise((resolve) => {
      const s = net.connect(this.probeSock);
      let buf = '';
      s.setEncoding('utf8');
      s.setTimeout(req.timeoutMs + 2000, () => s.destroy(new Error('probe helper timeout')));
      s.on('connect', () => s.write(JSON.stringify(req) + '\n'));
      s.on('data', (d: string) => (buf += d));
      s.on('end', () => {
        try {
          resolve(JSON.parse(buf) as ProbeResult);
        } catch {
          resolve({ ok: false, detail: `bad helper answer: ${buf}` });
        }
      });
      s.on('error', (err) => resolve({ ok: false, detail: err.message }));
    });
  }

  async stop(): Promise<void> {
    await this.proc?.stop(2000);
  }
}

interface ContainerState {
  spec: k8s.V1Container;
  proc?: Proc;
  logPath: string;
  restartCount: number;
  startedAt?: Date;
  lastTermination?: { exitCode: number; reason: string; startedAt?: Date; finishedAt: Date };
  ready: boolean;
  waitingReason?: string;
  waitingMessage?: string;
  restartTimer?: NodeJS.Timeout;
  probeTimer?: NodeJS.Timeout;
  backoffMs: number;
  done: boolean;
}

/** One pod on one of our nodes: its processes, probes and reported status. */
class PodRuntime {
  readonly dir: string;
  private containers: ContainerState[];
  private terminating = false;
  private startTime = new Date();
  private lastWritten = '';
  private writing?: Promise<void>;
  private dirty = false;
  private configError?: string;
  private tokenTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private env: Record<string, Record<string, string>> = {};
  private argv: Record<string, string[]> = {};

  constructor(
    private pod: k8s.V1Pod,
    readonly node: KubeletNode,
    private readonly k: TestKubelet,
  ) {
    const m = pod.metadata!;
    this.dir = path.join(k.dir, 'pods', `${m.namespace}_${m.name}_${m.uid}`);
    this.containers = (pod.spec?.containers ?? []).map((spec) => ({
      spec,
      logPath: path.join(this.dir, `${spec.name}.log`),
      restartCount: 0,
      ready: false,
      backoffMs: 1000,
      done: false,
    }));
  }

  get key(): string {
    return `${this.pod.metadata!.namespace}/${this.pod.metadata!.name}`;
  }

  get uid(): string {
    return this.pod.metadata!.uid!;
  }

  update(pod: k8s.V1Pod): void {
    this.pod = pod;
  }

  containerLog(name: string): string | undefined {
    return this.containers.find((c) => c.spec.name === name)?.logPath;
  }

  running(): RunningContainer[] {
    const m = this.pod.metadata!;
    return this.containers
      .filter((c) => c.proc && c.proc.exitCode === null)
      .map((c) => ({
        namespace: m.namespace!, pod: m.name!, uid: m.uid!, node: this.node.name, netns: this.node.netns,
        container: c.spec.name, pid: c.proc!.pid, logPath: c.logPath,
      }));
  }

  /** Prepares files and env, then starts every container; retries while config is missing. */
  async start(): Promise<void> {
    if (this.terminating) return;
    if ((this.pod.spec?.initContainers ?? []).length > 0) {
      this.configError = 'init containers are not supported by the test kubelet';
      for (const c of this.containers) {
        c.waitingReason = 'CreateContainerConfigError';
        c.waitingMessage = this.configError;
      }
      this.k.log.warn('pod not started', { pod: this.key, node: this.node.name, reason: this.configError });
      this.writeStatus();
      return;
    }
    const t0 = Date.now();
    try {
      await this.prepare();
      this.configError = undefined;
    } catch (err) {
      if (this.terminating) return;
      this.configError = err instanceof Error ? err.message : String(err);
      for (const c of this.containers) {
        c.waitingReason = 'CreateContainerConfigError';
        c.waitingMessage = this.configError;
      }
      this.k.log.warn('pod config not ready, retrying', { pod: this.key, node: this.node.name, error: this.configError });
      this.writeStatus();
      this.retryTimer = setTimeout(() => void this.start(), 2000);
      return;
    }
    if (this.terminating) return;
    this.k.log.info('pod set up', { pod: this.key, node: this.node.name, ms: Date.now() - t0 });
    for (const c of this.containers) this.startContainer(c);
    this.writeStatus();
  }

  private async prepare(): Promise<void> {
    const ns = this.pod.metadata!.namespace!;
    const refs = referencedObjects(this.pod);
    const ctx: PodContext = { nodeName: this.node.name, hostIP: this.node.ip, podIP: this.node.ip, secrets: {}, configMaps: {} };
    for (const name of refs.secrets) {
      try {
        ctx.secrets[name] = decode((await withTimeout(`reading secret ${name}`, this.k.core.readNamespacedSecret({ name, namespace: ns }))).data);
      } catch (err) {
        if (httpStatus(err) !== 404) throw err;
      }
    }
    for (const name of refs.configMaps) {
      try {
        const cm = await withTimeout(`reading configMap ${name}`, this.k.core.readNamespacedConfigMap({ name, namespace: ns }));
        ctx.configMaps[name] = { ...cm.data, ...decode(cm.binaryData) };
      } catch (err) {
        if (httpStatus(err) !== 404) throw err;
      }
    }
    mkdirSync(this.dir, { recursive: true });
    const volumeDirs: Record<string, string> = {};
    for (const [vol, files] of Object.entries(volumeFiles(this.pod, ctx))) {
      const vdir = path.join(this.dir, 'volumes', vol);
      volumeDirs[vol] = vdir;
      for (const [rel, content] of Object.entries(files)) writeAtomic(path.join(vdir, rel), content);
      mkdirSync(vdir, { recursive: true });
    }
    const saRoot = path.join(this.dir, 'sa-root');
    const saDir = path.join(saRoot, 'var/run/secrets/kubernetes.io/serviceaccount');
    const automount = this.pod.spec?.automountServiceAccountToken !== false;
    if (automount) await this.writeToken(saDir);
    const apiHost = '127.0.0.1';
    const base: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: process.env.HOME ?? '/root',
      HOSTNAME: this.node.name,
      KUBERNETES_SERVICE_HOST: apiHost,
      KUBERNETES_SERVICE_PORT: String(this.k.apiPort),
      KUBERNETES_SERVICE_PORT_HTTPS: String(this.k.apiPort),
      VIPFARM_POD_DIR: this.dir,
      VIPFARM_NETNS: this.node.netns ?? '',
      ...(automount ? { VIPFARM_SA_ROOT: saRoot, VIPFARM_SA_DIR: saDir } : {}),
      ...this.k.extraEnv,
    };
    for (const c of this.containers) {
      const env = resolveEnv(this.pod, c.spec, ctx, { ...base, VIPFARM_MOUNTS: JSON.stringify(mountMap(c.spec, volumeDirs)) });
      this.env[c.spec.name] = env;
      this.argv[c.spec.name] = containerArgv(c.spec, env);
    }
    if (this.node.netns) await this.k.helper(this.node.netns).ensure();
  }

  /** A bound token from the TokenRequest API, like the kubelet's projected volume. */
  private async writeToken(saDir: string): Promise<void> {
    const m = this.pod.metadata!;
    const sa = this.pod.spec?.serviceAccountName || 'default';
    const tr = await withTimeout(`TokenRequest for service account ${sa}`, this.k.core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: m.namespace!,
      body: {
        spec: { audiences: [], expirationSeconds: TOKEN_SECONDS, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: m.name, uid: m.uid } },
      },
    }));
    // Deleted meanwhile: its folder is gone (or going), do not bring it back.
    if (this.terminating) return;
    writeAtomic(path.join(saDir, 'token'), tr.status!.token);
    writeAtomic(path.join(saDir, 'ca.crt'), readFileSync(this.k.caCertPath, 'utf8'), 0o644);
    writeAtomic(path.join(saDir, 'namespace'), m.namespace!, 0o644);
    // Renew at 80% of the lifetime, as the kubelet does.
    clearTimeout(this.tokenTimer);
    this.tokenTimer = setTimeout(() => {
      this.writeToken(saDir).catch((err) => this.k.log.warn('token renewal failed', { pod: this.key, error: String(err) }));
    }, TOKEN_SECONDS * 800);
    this.tokenTimer.unref();
  }

  private startContainer(c: ContainerState): void {
    if (this.terminating) return;
    const argv = this.argv[c.spec.name];
    const [cmd, args] = this.node.netns ? ['ip', ['netns', 'exec', this.node.netns, ...argv]] : [argv[0], argv.slice(1)];
    c.waitingReason = undefined;
    c.waitingMessage = undefined;
    c.ready = false;
    c.startedAt = new Date();
    const proc = startProc(`${this.key}/${c.spec.name}`, cmd, args, c.logPath, {
      env: this.env[c.spec.name],
      cwd: c.spec.workingDir || this.k.cwd,
    });
    c.proc = proc;
    this.k.log.info('container started', { pod: this.key, node: this.node.name, container: c.spec.name, pid: proc.pid, netns: this.node.netns });
    void proc.exited.then((code) => this.onExit(c, proc, code));
    this.startProbes(c);
  }

  private onExit(c: ContainerState, proc: Proc, code: number | string): void {
    if (c.proc !== proc) return;
    clearTimeout(c.probeTimer);
    const exitCode = typeof code === 'number' ? code : 137;
    const finishedAt = new Date();
    c.lastTermination = { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: c.startedAt, finishedAt };
    c.ready = false;
    c.proc = undefined;
    if (this.terminating) return;
    this.k.log.info('container exited', { pod: this.key, node: this.node.name, container: c.spec.name, exitCode: code });
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    if (!restart) {
      c.done = true;
    } else {
      // Back off like CrashLoopBackOff, but in seconds, not minutes; a long run resets it.
      const ran = finishedAt.getTime() - (c.startedAt?.getTime() ?? 0);
      if (ran > 30_000) c.backoffMs = 1000;
      c.waitingReason = 'CrashLoopBackOff';
      c.waitingMessage = `back-off ${c.backoffMs / 1000}s restarting failed container`;
      c.restartTimer = setTimeout(() => {
        c.restartCount++;
        this.startContainer(c);
        this.writeStatus();
      }, c.backoffMs);
      c.backoffMs = Math.min(c.backoffMs * 2, 20_000);
    }
    this.writeStatus();
  }

  private startProbes(c: ContainerState): void {
    const probe = c.spec.readinessProbe;
    if (!probe) {
      c.ready = true;
      return;
    }
    const period = (probe.periodSeconds ?? 10) * 1000;
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    const successThreshold = probe.successThreshold ?? 1;
    const failureThreshold = probe.failureThreshold ?? 3;
    let successes = 0;
    let failures = 0;
    const proc = c.proc;
    const tick = async (): Promise<void> => {
      if (c.proc !== proc || this.terminating) return;
      const res = await this.runProbe(c.spec, probe, timeoutMs);
      if (c.proc !== proc || this.terminating) return;
      if (res.ok) {
        failures = 0;
        successes++;
        if (!c.ready && successes >= successThreshold) {
          c.ready = true;
          this.writeStatus();
        }
      } else {
        successes = 0;
        failures++;
        if (c.ready && failures >= failureThreshold) {
          c.ready = false;
          this.k.log.info('readiness probe failed', { pod: this.key, container: c.spec.name, detail: res.detail });
          this.writeStatus();
        }
      }
      c.probeTimer = setTimeout(() => void tick(), period);
    };
    c.probeTimer = setTimeout(() => void tick(), (probe.initialDelaySeconds ?? 0) * 1000);
  }

  private async runProbe(spec: k8s.V1Container, probe: k8s.V1Probe, timeoutMs: number): Promise<ProbeResult> {
    const port = (p: number | string): number => {
      if (typeof p === 'number') return p;
      const named = spec.ports?.find((cp) => cp.name === p)?.containerPort;
      return named ?? Number(p);
    };
    let req: ProbeRequest | undefined;
    if (probe.httpGet) {
      const g = probe.httpGet;
      req = { kind: 'http', scheme: g.scheme === 'HTTPS' ? 'HTTPS' : 'HTTP', host: g.host || this.node.ip, port: port(g.port as number | string), path: g.path ?? '/', timeoutMs };
    } else if (probe.tcpSocket) {
      req = { kind: 'tcp', host: probe.tcpSocket.host || this.node.ip, port: port(probe.tcpSocket.port as number | string), timeoutMs };
    } else if (probe.exec?.command) {
      const argv = probe.exec.command;
      const [cmd, args] = this.node.netns ? ['ip', ['netns', 'exec', this.node.netns, ...argv]] : [argv[0], argv.slice(1)];
      try {
        await execFileP(cmd, args, { timeout: timeoutMs, env: this.env[spec.name], cwd: spec.workingDir || this.k.cwd });
        return { ok: true, detail: 'exit 0' };
      } catch (err) {
        return { ok: false, detail: String(err) };
      }
    }
    if (!req) return { ok: false, detail: 'unsupported probe' };
    return this.node.netns ? this.k.helper(this.node.netns).probe(req) : runProbe(req);
  }

  /** SIGTERM, SIGKILL after the grace period; no restarts after this. */
  async terminate(graceSec: number): Promise<void> {
    this.terminating = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.tokenTimer);
    for (const c of this.containers) {
      clearTimeout(c.restartTimer);
      clearTimeout(c.probeTimer);
    }
    await Promise.all(this.containers.map((c) => c.proc?.stop(graceSec * 1000)));
    this.k.log.info('pod stopped', { pod: this.key, node: this.node.name });
  }

  removeFiles(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  status(): k8s.V1PodStatus {
    const containerStatuses: k8s.V1ContainerStatus[] = this.containers.map((c) => {
      let state: k8s.V1ContainerState;
      if (c.proc) state = { running: { startedAt: c.startedAt } };
      else if (c.done && c.lastTermination) state = { terminated: { ...c.lastTermination } };
      else state = { waiting: { reason: c.waitingReason ?? 'ContainerCreating', message: c.waitingMessage } };
      return {
        name: c.spec.name,
        image: c.spec.image ?? '',
        imageID: '',
        containerID: c.proc ? `vipfarm-test://${c.proc.pid}` : undefined,
        ready: c.ready && !!c.proc,
        started: !!c.proc,
        restartCount: c.restartCount,
        state,
        lastState: c.lastTermination && !c.done ? { terminated: { ...c.lastTermination } } : {},
      };
    });
    const anyRunning = this.containers.some((c) => c.proc || c.restartTimer !== undefined && !c.done);
    const allDone = this.containers.every((c) => c.done);
    const phase = allDone ? (this.containers.every((c) => c.lastTermination?.exitCode === 0) ? 'Succeeded' : 'Failed') : anyRunning ? 'Running' : 'Pending';
    const ready = phase === 'Running' && containerStatuses.every((s) => s.ready);
    const cond = (type: string, ok: boolean, reason?: string): k8s.V1PodCondition => ({ type, status: ok ? 'True' : 'False', reason, lastTransitionTime: this.startTime });
    return {
      phase,
      hostIP: this.node.ip,
      hostIPs: [{ ip: this.node.ip }, ...(this.node.otherIP ? [{ ip: this.node.otherIP }] : [])],
      podIP: this.node.ip,
      podIPs: [{ ip: this.node.ip }],
      startTime: this.startTime,
      conditions: [
        cond('PodScheduled', true),
        cond('Initialized', true),
        cond('ContainersReady', ready, ready ? undefined : 'ContainersNotReady'),
        cond('Ready', ready, ready ? undefined : 'ContainersNotReady'),
      ],
      containerStatuses,
    };
  }

  /** Writes the status if it changed; one write in flight, the latest state wins. */
  writeStatus(): void {
    this.dirty = true;
    if (this.writing) return;
    this.writing = (async () => {
      while (this.dirty && !this.k.stopped) {
        this.dirty = false;
        const status = this.status();
        const text = JSON.stringify(status, (k, v) => (k === 'lastTransitionTime' ? undefined : v));
        if (text === this.lastWritten) continue;
        try {
          await this.k.core.patchNamespacedPodStatus({ name: this.pod.metadata!.name!, namespace: this.pod.metadata!.namespace!, body: { status } }, statusPatch);
          this.lastWritten = text;
        } catch (err) {
          if (httpStatus(err) === 404) return;
          this.k.log.warn('pod status write failed', { pod: this.key, error: String(err) });
          this.dirty = true;
          await sleep(1000);
        }
      }
    })().finally(() => (this.writing = undefined));
  }
}

class TestKubelet implements Kubelet {
  readonly dir: string;
  readonly relaySock: string;
  readonly apiPort: number;
  readonly caCertPath: string;
  readonly core: k8s.CoreV1Api;
  readonly log: winston.Logger;
  readonly cwd: string;
  readonly extraEnv: Record<string, string>;
  stopped = false;
  private readonly nodes: Map<string, KubeletNode>;
  private readonly pods = new Map<string, PodRuntime>();
  private readonly queues = new Map<string, Promise<void>>();
  private readonly helpers = new Map<string, NetnsHelper>();
  private relay?: net.Server;
  private logServer?: LogServer;
  private informer?: k8s.Informer<k8s.V1Pod>;

  constructor(private readonly opts: KubeletOptions) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-kubelet-'));
    this.relaySock = path.join(this.dir, 'apiserver.sock');
    this.apiPort = opts.controlPlane.port;
    this.caCertPath = opts.controlPlane.pki.caCert;
    this.core = opts.controlPlane.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.nodes = new Map(opts.nodes.map((n) => [n.name, n]));
    this.cwd = opts.cwd ?? repoRoot();
    this.extraEnv = opts.env ?? {};
    this.log = winston.createLogger({
      level: 'info',
      defaultMeta: { component: 'test-kubelet' },
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      transports: [new winston.transports.File({ filename: path.join(this.dir, 'kubelet.log') })],
    });
  }

  helper(netns: string): NetnsHelper {
    let h = this.helpers.get(netns);
    if (!h) {
      h = new NetnsHelper(netns, this);
      this.helpers.set(netns, h);
    }
    return h;
  }

  async start(): Promise<void> {
    // Host side of the API relay for processes in network namespaces.
    this.relay = net.createServer((c) => {
      const upstream = net.connect(this.apiPort, '127.0.0.1');
      c.pipe(upstream);
      upstream.pipe(c);
      const close = (): void => {
        c.destroy();
        upstream.destroy();
      };
      for (const s of [c, upstream]) {
        s.on('error', close);
        s.on('close', close);
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.relay!.once('error', reject);
      this.relay!.listen(this.relaySock, resolve);
    });
    // kubectl logs: the apiserver reaches our log endpoint through each node's
    // daemonEndpoints port and its InternalDNS address (the apiserver's serving cert,
    // valid for localhost, serves it).
    const pki = this.opts.controlPlane.pki;
    this.logServer = await startLogServer(
      { cert: pki.serverCert, key: pki.serverKey },
      (q) => this.logPath(q.namespace, q.pod, q.container),
      (q) => this.running().some((r) => r.namespace === q.namespace && r.pod === q.pod && r.container === q.container),
    );
    for (const name of this.nodes.keys()) {
      await this.core.patchNodeStatus(
        { name, body: { status: { daemonEndpoints: { kubeletEndpoint: { Port: this.logServer.port } }, addresses: [{ type: 'InternalDNS', address: 'localhost' }] } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
      );
    }
    const kc = this.opts.controlPlane.kubeConfig;
    this.informer = k8s.makeInformer(kc, '/api/v1/pods', () => this.core.listPodForAllNamespaces());
    this.informer.on('add', (p) => this.enqueue(p, false));
    this.informer.on('update', (p) => this.enqueue(p, false));
    this.informer.on('delete', (p) => this.enqueue(p, true));
    this.informer.on('error', () => {
      // The informer stops on errors; restart it unless we are shutting down.
      if (!this.stopped) setTimeout(() => void this.informer?.start().catch(() => undefined), 1000);
    });
    await this.informer.start();
    this.log.info('kubelet started', { nodes: [...this.nodes.keys()] });
  }

  /** One sync at a time per pod uid, in event order. */
  private enqueue(pod: k8s.V1Pod, gone: boolean): void {
    const node = pod.spec?.nodeName;
    const uid = pod.metadata?.uid;
    if (!node || !uid || !this.nodes.has(node) || this.stopped) return;
    const prev = this.queues.get(uid) ?? Promise.resolve();
    const next = prev
      .then(() => this.sync(pod, gone))
      .catch((err) => {
        this.log.error('pod sync failed', { pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, error: String(err) });
      });
    this.queues.set(uid, next);
    void next.finally(() => {
      if (this.queues.get(uid) === next) this.queues.delete(uid);
    });
  }

  private async sync(pod: k8s.V1Pod, gone: boolean): Promise<void> {
    if (this.stopped) return;
    const uid = pod.metadata!.uid!;
    let rt = this.pods.get(uid);
    if (gone) {
      if (rt) {
        this.pods.delete(uid);
        await rt.terminate(0);
        rt.removeFiles();
      }
      return;
    }
    if (pod.metadata?.deletionTimestamp) {
      if (rt) {
        const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
        this.pods.delete(uid);
        await rt.terminate(grace);
        rt.removeFiles();
      }
      // Finish the deletion the way a kubelet does once the containers are gone. The grace
      // period goes in the body: with a body, the apiserver ignores the query parameters.
      try {
        await this.core.deleteNamespacedPod({ name: pod.metadata.name!, namespace: pod.metadata.namespace!, body: { gracePeriodSeconds: 0, preconditions: { uid } } });
        this.log.info('pod deleted', { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, node: pod.spec?.nodeName });
      } catch (err) {
        if (httpStatus(err) !== 404) throw err;
      }
      return;
    }
    if (rt) {
      rt.update(pod);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return;
    rt = new PodRuntime(pod, this.nodes.get(pod.spec!.nodeName!)!, this);
    this.pods.set(uid, rt);
    await rt.start();
  }

  running(): RunningContainer[] {
    return [...this.pods.values()].flatMap((p) => p.running());
  }

  logPath(namespace: string, pod: string, container: string): string | undefined {
    for (const rt of this.pods.values()) if (rt.key === `${namespace}/${pod}`) return rt.containerLog(container);
    return undefined;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.informer?.stop().catch(() => undefined);
    // Syncs in flight (a pod being set up) finish first, or they would write into a
    // folder already removed.
    await withTimeout('pod syncs in flight', Promise.allSettled([...this.queues.values()]), 20_000).catch((err) => this.log.warn(String(err)));
    await Promise.all([...this.pods.values()].map((p) => p.terminate(2)));
    this.pods.clear();
    await Promise.all([...this.helpers.values()].map((h) => h.stop()));
    await new Promise<void>((r) => (this.relay ? this.relay.close(() => r()) : r()));
    await this.logServer?.close();
    this.log.close();
    if (process.env.VIPFARM_KEEP_CP !== '1') rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts the test kubelet for the given nodes (whose Node objects registerNodes made). */
export async function startKubelet(opts: KubeletOptions): Promise<Kubelet> {
  const k = new TestKubelet(opts);
  const onExit = (): void => rmSync(k.dir, { recursive: true, force: true });
  process.on('exit', onExit);
  try {
    await k.start();
  } catch (err) {
    await k.stop();
    throw err;
  }
  const stop = k.stop.bind(k);
  k.stop = async () => {
    process.off('exit', onExit);
    await stop();
  };
  return k;
}
