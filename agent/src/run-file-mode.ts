// Standalone mode: the farm, this node and its peers from a YAML file. Everything is
// validated and every resource claimed (key, metrics port) before the kernel is touched.
import { readFileSync } from 'node:fs';
import { createLogger } from '../../common/src/log.js';
import { formatErrors, parseAgentFile, type AgentConfig } from '../../common/src/config/index.js';
import { checkIfaceExists } from '../../native/src/index.js';
import type { AgentCliOptions } from './cli.js';
import { installSignalHandlers } from './signals.js';
import { startAgent } from './start-agent.js';


export function loadAgentFile(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read config ${path}: ${(err as Error).message}`);
  }
  const r = parseAgentFile(text);
  if (!r.ok) throw new Error(`invalid config ${path}:\n${indent(formatErrors(r.errors))}`);
  return r.value;
}

export function loadKey(path: string): Buffer {
  let key: Buffer;
  try {
    key = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read heartbeat key ${path}: ${(err as Error).message}`);
  }
  if (key.length < 16) throw new Error(`heartbeat key ${path}: ${key.length} bytes, want at least 16`);
  return key;
}

/**
 * Everything --config refuses before it changes anything, in one place: --check-config runs
 * exactly this, so a file it passes does not fail at start for a reason it could have seen.
 * The kernel-side part only reads (does the interface exist in this network namespace).
 */
export function preflightFile(path: string): { cfg: AgentConfig; key: Buffer } {
  const cfg = loadAgentFile(path);
  const key = loadKey(cfg.keyFile);
  checkIfaceExists(`config ${path}`, cfg.farm.interface);
  return { cfg, key };
}

function indent(s: string): string {
  return s.split('\n').map((l) => `  ${l}`).join('\n');
}

export async function runFileMode(o: AgentCliOptions): Promise<void> {
  const { cfg, key } = preflightFile(o.config!);
  const log = createLogger('agent', { farm: cfg.farm.name, node: cfg.node.name });
  log.level = o.logLevel;
  const { agent, server } = await startAgent({ farm: cfg.farm, self: cfg.node, peers: cfg.peers, key, log });
  installSignalHandlers({
    agent, log, server, drainTimeoutSec: o.drainTimeoutSec, stopTimeoutSec: o.stopTimeoutSec,
    // Everything is read and validated first, then the kernel is programmed, and only then
    // are key and peers swapped: a refused reload leaves the running farm whole.
    reload: () => {
      const { cfg: next, key: nextKey } = preflightFile(o.config!);
      agent.reconfigure({ farm: next.farm, self: next.node, peers: next.peers, key: nextKey });
      log.info('config reloaded', { event: 'reload', config: o.config });
    },
  });
}
