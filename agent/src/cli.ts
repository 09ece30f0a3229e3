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

export function parseAgentArgs(argv: string[], env: Record<string, string | undefined> = {}): CliResult {
  const o: AgentCliOptions = {
    mode: 'file',
    drainTimeoutSec: 300,
    stopTimeoutSec: 5,
    logLevel: env.VIPFARM_LOG_LEVEL ?? 'info',
    namespace: env.POD_NAMESPACE,
    node: env.NODE_NAME,
  };
  let kubernetes = false;
  let check: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string | undefined => {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) return undefined;
      i++;
      return v;
    };
    const need = (name: string): string | CliResult => value() ?? { ok: false, error: `${name} needs a value` };
    const seconds = (name: string): number | CliResult => {
      const v = need(name);
      if (typeof v !== 'string') return v;
      const n = Number(v);
      return Number.isFinite(n) && n >= 0 ? n : { ok: false, error: `${name}: want seconds >= 0, got "${v}"` };
    };
    let v: string | number | CliResult;
    switch (a) {
      case '-h':
      case '--help':
        return { ok: true, options: { ...o, mode: 'help' } };
      case '--kubernetes':
        kubernetes = true;
        continue;
      case '--config':
      case '--farm':
      case '--namespace':
      case '--node':
      case '--check-config':
      case '--log-level':
        v = need(a);
        break;
      case '--drain-timeout':
      case '--stop-timeout':
        v = seconds(a);
        break;
      default:
        return { ok: false, error: `unknown argument "${a}" (see --help)` };
    }
    if (typeof v === 'object') return v;
    if (a === '--config') o.config = v as string;
    else if (a === '--farm') o.farm = v as string;
    else if (a === '--namespace') o.namespace = v as string;
    else if (a === '--node') o.node = v as string;
    else if (a === '--check-config') check = v as string;
    else if (a === '--log-level') o.logLevel = v as string;
    else if (a === '--drain-timeout') o.drainTimeoutSec = v as number;
    else o.stopTimeoutSec = v as number;
  }
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
