// Command-line parsing of vipfarm-agent (pure: argv in, options or a usage error out).

export const USAGE = `Usage:
  vipfarm-agent --config FILE [options]           standalone: farm, node and peers from a YAML file
  vipfarm-agent --kubernetes --farm NAME [options] the farm is a FarmCluster; peers from its pods
  vipfarm-agent --check-config FILE               check a file as --config would (key, interface), exit

Options:
  --config FILE          agent YAML (same shape as the FarmCluster spec, plus node, peers, keyFile)
  --kubernetes           read the farm from the API server (in-cluster credentials)
  --farm NAME            FarmCluster name (Kubernetes mode)
  --namespace NS         FarmCluster namespace (default: $POD_NAMESPACE or "default")
  --node NAME            this node's name (default: $NODE_NAME, then the host name)
  --drain-timeout SEC    how long a drain (SIGUSR1) waits for established connections (default 300)
  --stop-timeout SEC     how long SIGTERM/SIGINT drains before removing kernel state (default 5)
  --log-level LEVEL      error, warn, info, debug (default info)
  -h, --help             this text

Signals: SIGUSR1 drains (hands off all buckets, keeps established connections until they end
or --drain-timeout passes) and exits; SIGTERM and SIGINT drain for --stop-timeout, then
remove the tables, the VIP and the sysctl changes, and exit.
`;

export interface AgentCliOptions {
  mode: 'file' | 'kubernetes' | 'check' | 'help';
  config?: string;
  farm?: string;
  namespace?: string;
  node?: string;
  drainTimeoutSec: number;
  stopTimeoutSec: number;
  logLevel: string;
}

export type CliResult = { ok: true; options: AgentCliOptions } | { ok: false; error: string };

const LEVELS = ['error', 'warn', 'info', 'debug'];

interface Parsed {
  o: AgentCliOptions;
  kubernetes: boolean;
  check?: string;
}

/** Flags that take a word, and what each sets. */
const WORD_FLAGS: Record<string, (p: Parsed, v: string) => void> = {
  '--config': (p, v) => (p.o.config = v),
  '--farm': (p, v) => (p.o.farm = v),
  '--namespace': (p, v) => (p.o.namespace = v),
  '--node': (p, v) => (p.o.node = v),
  '--check-config': (p, v) => (p.check = v),
  '--log-level': (p, v) => (p.o.logLevel = v),
};
/** Flags that take seconds (>= 0). */
const SECONDS_FLAGS: Record<string, (p: Parsed, n: number) => void> = {
  '--drain-timeout': (p, n) => (p.o.drainTimeoutSec = n),
  '--stop-timeout': (p, n) => (p.o.stopTimeoutSec = n),
};
const own = <T>(table: Record<string, T>, key: string): T | undefined => (Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined);

export function parseAgentArgs(argv: string[], env: Record<string, string | undefined> = {}): CliResult {
  const p: Parsed = {
    o: {
      mode: 'file',
      drainTimeoutSec: 300,
      stopTimeoutSec: 5,
      logLevel: env.VIPFARM_LOG_LEVEL ?? 'info',
      namespace: env.POD_NAMESPACE,
      node: env.NODE_NAME,
    },
    kubernetes: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return { ok: true, options: { ...p.o, mode: 'help' } };
    if (a === '--kubernetes') {
      p.kubernetes = true;
      continue;
    }
    const setWord = own(WORD_FLAGS, a);
    const setSeconds = own(SECONDS_FLAGS, a);
    if (!setWord && !setSeconds) return { ok: false, error: `unknown argument "${a}" (see --help)` };
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) return { ok: false, error: `${a} needs a value` };
    i++;
    if (setWord) {
      setWord(p, v);
      continue;
    }
    const n = Number(v);
    if (!(Number.isFinite(n) && n >= 0)) return { ok: false, error: `${a}: want seconds >= 0, got "${v}"` };
    setSeconds!(p, n);
  }
  return finish(p);
}

/** The mode the flags add up to, or why they do not. */
function finish({ o, kubernetes, check }: Parsed): CliResult {
  if (!LEVELS.includes(o.logLevel)) return { ok: false, error: `--log-level: want one of ${LEVELS.join(', ')}, got "${o.logLevel}"` };
  if (check !== undefined) return { ok: true, options: { ...o, mode: 'check', config: check } };
  if (kubernetes) {
    if (o.config) return { ok: false, error: '--kubernetes and --config exclude each other' };
    if (!o.farm) return { ok: false, error: '--kubernetes needs --farm NAME' };
    return { ok: true, options: { ...o, mode: 'kubernetes', namespace: o.namespace ?? 'default' } };
  }
  if (!o.config) return { ok: false, error: 'missing --config FILE (or --kubernetes --farm NAME); see --help' };
  return { ok: true, options: o };
}
