// Command line of the operator. Pure: argv and env in, options or an error out.
import os from 'node:os';
import { DEFAULT_SETTINGS, type OperatorSettings } from './desired-objects.js';
import { FARMCLUSTER_API_VERSION } from '../../common/src/farmcluster-types.js';

export const HELP = `vipfarm-operator: reconciles FarmCluster objects (${FARMCLUSTER_API_VERSION}) into agent DaemonSets

Usage: vipfarm-operator [options]

  --kubeconfig FILE              kubeconfig (default: $KUBECONFIG, then in-cluster)
  --namespace NS                 watch FarmClusters in NS only (default: all namespaces)
  --agent-image IMAGE            agent image when a farm names none (default ${DEFAULT_SETTINGS.agentImage})
  --agent-entrypoint PATH        agent main.js in the image (default ${DEFAULT_SETTINGS.agentEntrypoint})
  --node-binary PATH             program that runs the entrypoint (default ${DEFAULT_SETTINGS.nodeBinary})
  --image-pull-policy POLICY     Always, IfNotPresent or Never (default ${DEFAULT_SETTINGS.imagePullPolicy})
  --http-port PORT               /healthz and /metrics (default 8080, 0 = any free port)
  --leader-elect BOOL            take a coordination.k8s.io Lease before reconciling (default true)
  --leader-election-namespace NS namespace of the Lease (default: $POD_NAMESPACE, then vipfarm-system)
  --leader-election-id NAME      name of the Lease (default vipfarm-operator)
  --identity ID                  this replica's name in the Lease (default: $POD_NAME, then host-pid)
  --concurrency N                farms reconciled in parallel (default 2)
  --finalizer-timeout SEC        how long deletion waits for the agents' cleanup (default 300)
  --member-grace SEC             remove a member's status when its node has had no agent
                                 pod for this long (default 60)
  --log-level LEVEL              error, warn, info, debug (default info)
  -h, --help                     this text

Signals: SIGTERM/SIGINT finish the reconciles in flight, release the Lease and exit 0.
`;

export interface OperatorOptions {
  kubeconfig?: string;
  namespace?: string;
  settings: OperatorSettings;
  httpPort: number;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  concurrency: number;
  finalizerTimeoutMs: number;
  memberGraceMs: number;
  logLevel: string;
}

export type ParseResult = { ok: true; options: OperatorOptions } | { ok: false; help: true } | { ok: false; help: false; error: string };

const FLAGS = [
  'kubeconfig', 'namespace', 'agent-image', 'agent-entrypoint', 'node-binary', 'image-pull-policy', 'http-port', 'leader-elect',
  'leader-election-namespace', 'leader-election-id', 'identity', 'concurrency', 'finalizer-timeout', 'member-grace', 'log-level',
] as const;

function int(v: string, flag: string, min: number, max: number): number | string {
  const n = Number(v);
  return /^\d+$/.test(v) && n >= min && n <= max ? n : `--${flag} must be an integer ${min}..${max}, got ${JSON.stringify(v)}`;
}

type Flag = (typeof FLAGS)[number];
type Values = Partial<Record<Flag, string>>;
type Failure = Extract<ParseResult, { ok: false }>;
const fail = (error: string): Failure => ({ ok: false, help: false, error });

export function parseArgs(argv: string[], env: Record<string, string | undefined> = {}): ParseResult {
  const v = readFlags(argv);
  if ('ok' in v) return v;
  const numbers = readNumbers(v);
  if (typeof numbers === 'string') return fail(numbers);
  const pull = v['image-pull-policy'] ?? DEFAULT_SETTINGS.imagePullPolicy;
  if (pull !== 'Always' && pull !== 'IfNotPresent' && pull !== 'Never') {
    return fail(`--image-pull-policy must be Always, IfNotPresent or Never, got ${JSON.stringify(pull)}`);
  }
  const le = v['leader-elect'] ?? 'true';
  if (le !== 'true' && le !== 'false') return fail(`--leader-elect must be true or false, got ${JSON.stringify(le)}`);
  const level = v['log-level'] ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(level)) return fail(`--log-level must be error, warn, info or debug, got ${JSON.stringify(level)}`);
  return {
    ok: true,
    options: {
      kubeconfig: v.kubeconfig,
      namespace: v.namespace,
      settings: {
        agentImage: v['agent-image'] ?? DEFAULT_SETTINGS.agentImage,
        agentEntrypoint: v['agent-entrypoint'] ?? DEFAULT_SETTINGS.agentEntrypoint,
        nodeBinary: v['node-binary'] ?? DEFAULT_SETTINGS.nodeBinary,
        imagePullPolicy: pull,
      },
      ...numbers,
      leaderElect: le === 'true',
      ...lease(v, env),
      logLevel: level,
    },
  };
}

/** --flag VALUE and --flag=VALUE into a map; --help and unknown flags end it. */
function readFlags(argv: string[]): Values | Failure {
  const v: Values = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') return { ok: false, help: true };
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    const flag = m?.[1] as Flag | undefined;
    if (!m || !flag || !FLAGS.includes(flag)) return fail(`unknown argument ${JSON.stringify(a)} (see --help)`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) return fail(`--${flag} needs a value`);
    v[flag] = value;
  }
  return v;
}

function readNumbers(v: Values): Pick<OperatorOptions, 'httpPort' | 'concurrency' | 'finalizerTimeoutMs' | 'memberGraceMs'> | string {
  const httpPort = int(v['http-port'] ?? '8080', 'http-port', 0, 65535);
  const concurrency = int(v.concurrency ?? '2', 'concurrency', 1, 64);
  const timeout = int(v['finalizer-timeout'] ?? '300', 'finalizer-timeout', 0, 86400);
  const grace = int(v['member-grace'] ?? '60', 'member-grace', 0, 86400);
  for (const x of [httpPort, concurrency, timeout, grace]) if (typeof x === 'string') return x;
  return { httpPort: httpPort as number, concurrency: concurrency as number, finalizerTimeoutMs: (timeout as number) * 1000, memberGraceMs: (grace as number) * 1000 };
}

function lease(v: Values, env: Record<string, string | undefined>): Pick<OperatorOptions, 'leaseNamespace' | 'leaseName' | 'identity'> {
  return {
    leaseNamespace: v['leader-election-namespace'] ?? env.POD_NAMESPACE ?? 'vipfarm-system',
    leaseName: v['leader-election-id'] ?? 'vipfarm-operator',
    identity: v.identity ?? env.POD_NAME ?? `${os.hostname()}-${process.pid}`,
  };
}
