// Standalone mode: the farm, this node and its peers from a YAML file. Everything is
// validated and every resource claimed (key, metrics port) before the kernel is touched.
import { readFileSync } from 'node:fs';
import { createLogger } from '../../common/src/log.js';
import { formatErrors, parseAgentFile, type AgentConfig } from '../../common/src/farm-config.js';
import { Agent } from './agent.js';
import type { AgentCliOptions } from './cli.js';
import { AgentMetrics, startMetricsServer } from './metrics.js';
import { NativeDatapath } from './native-datapath.js';
import { installSignalHandlers } from './signals.js';
import { UdpTransport } from './transport.js';

export class UsageError extends Error {}

export function loadAgentFile(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config ${path}: ${(err as Error).message}`);
  }
  const r = parseAgentFile(text);
  if (!r.ok) throw new UsageError(`invalid config ${path}:\n${indent(formatErrors(r.errors))}`);
  return r.value;
}

export function loadKey(path: string): Buffer {
  let key: Buffer;
  try {
    key = readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read heartbeat key ${path}: ${(err as Error).message}`);
  }
  if (key.length < 16) throw new UsageError(`heartbeat key ${path}: ${key.length} bytes, want at least 16`);
  return key;
}

function indent(s: string): string {
  return s.split('\n').map((l) => `  ${l}`).join('\n');
}

export async function runFileMode(o: AgentCliOptions): Promise<void> {
  const cfg = loadAgentFile(o.config!);
  const key = loadKey(cfg.keyFile);
  const log = createLogger('agent', { farm: cfg.farm.name, node: cfg.node.name });
  log.level = o.logLevel;
  const datapath = new NativeDatapath();
  const metrics = new AgentMetrics(cfg.farm.name, cfg.node.name, () => datapath.counters());
  const transport = new UdpTransport(cfg.farm.heartbeat.port, '0.0.0.0', (err, to) =>
    log.debug('heartbeat send failed', { event: 'send_error', to, error: err.message }));
  const agent = new Agent({ farm: cfg.farm, self: cfg.node, peers: cfg.peers, key, datapath, transport, metrics, log });
  const server = await startMetricsServer(metrics, agent, cfg.farm.metricsPort).catch((err: Error) => {
    throw new UsageError(`metrics port ${cfg.farm.metricsPort}: ${err.message}`);
  });
  try {
    await agent.start();
  } catch (err) {
    // Leave nothing half-applied behind.
    await agent.stop().catch(() => {});
    server.close();
    throw err;
  }
  installSignalHandlers({
    agent, log, server, drainTimeoutSec: o.drainTimeoutSec, stopTimeoutSec: o.stopTimeoutSec,
    reload: () => {
      const next = loadAgentFile(o.config!);
      agent.setKey(loadKey(next.keyFile));
      agent.setPeers(next.peers);
      agent.reconfigure(next.farm, next.node);
    },
  });
}
