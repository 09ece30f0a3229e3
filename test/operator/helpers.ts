// Shared by the operator's integration tests: polling, the operator process, namespaces.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../lab/cluster/binaries.js';
import type { ControlPlane } from '../../lab/cluster/controlplane.js';
import { FARMCLUSTER_API_VERSION, FARMCLUSTER_GROUP, FARMCLUSTER_KIND, FARMCLUSTER_PLURAL } from '../../common/src/farmcluster-types.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns something other than undefined/false. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

export const root = repoRoot();
export const CRD = path.join(root, 'crds/farmcluster.yaml');
export const OPERATOR = path.join(root, 'dist/operator/src/main.js');

export interface OperatorProc {
  proc: ChildProcess;
  logPath: string;
  log(): string;
  /** JSON log events with event === name */
  events(name: string): Record<string, unknown>[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startOperator(cp: ControlPlane, logPath: string, args: string[], env: Record<string, string> = {}): OperatorProc {
  const fd = openSync(logPath, 'a');
  const proc = spawn(process.execPath, [OPERATOR, '--kubeconfig', cp.kubeconfigPath, '--http-port', '0', ...args], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, VIPFARM_LOG_LEVEL: 'debug', ...env },
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const log = (): string => readFileSync(logPath, 'utf8');
  return {
    proc,
    logPath,
    log,
    events: (name) =>
      log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e.event === name),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** kubectl, returning stdout, or the error text when it fails (for expected refusals). */
export async function kubectlResult(cp: ControlPlane, args: string[], input?: string): Promise<{ ok: boolean; out: string }> {
  try {
    return { ok: true, out: await cp.kubectl(args, input) };
  } catch (err) {
    return { ok: false, out: (err as Error).message };
  }
}

export async function applyCrd(cp: ControlPlane): Promise<void> {
  await cp.kubectl(['apply', '--server-side', '-f', CRD]);
  await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${FARMCLUSTER_PLURAL}.${FARMCLUSTER_GROUP}`]);
}

export function farmYaml(name: string, namespace: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: FARMCLUSTER_API_VERSION, kind: FARMCLUSTER_KIND, metadata: { name, namespace }, spec });
}
