import { createLogger } from '../../common/src/log.js';
import { parseFarmSpec } from '../../common/src/farm-config.js';
import type { DataplaneFarm, FarmConfig } from '../../common/src/types.js';
import { Agent } from './agent.js';
import type { Datapath } from './edges/datapath.js';
import { decodeHeartbeat } from './core/heartbeat-codec.js';
import { AgentMetrics } from './edges/metrics.js';
import type { HeartbeatTransport } from './edges/transport.js';

const KEY = Buffer.alloc(32, 7);

function farm(): FarmConfig {
  const r = parseFarmSpec({ virtualIPs: ['10.9.0.100'], interface: 'eth0', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }], bucketCount: 16 }, { name: 'unit' });
  if (!r.ok) throw new Error('bad test farm');
  return r.value;
}

function rig(): { agent: Agent; calls: string[]; sent: Buffer[]; owned: () => number[] } {
  const calls: string[] = [];
  const sent: Buffer[] = [];
  let owned: number[] = [];
  const datapath: Datapath = {
    program: (f: DataplaneFarm) => void calls.push(`program ${f.name}`),
    setOwnership: (o) => {
      owned = o;
      calls.push(`own ${o.length}`);
    },
    counters: () => [],
    remove: () => void calls.push('remove'),
  };
  const transport: HeartbeatTransport = {
    start: async () => void calls.push('listen'),
    send: (buf) => {
      sent.push(buf);
      calls.push('send');
    },
    stop: async () => void calls.push('close'),
  };
  const log = createLogger('test');
  log.silent = true;
  const agent = new Agent({
    farm: farm(), self: { name: 'n1', address: '10.9.0.1', weight: 1 }, peers: [{ name: 'n1', address: '10.9.0.1' }],
    key: KEY, datapath, transport, metrics: new AgentMetrics('unit', 'n1'), log, established: () => 0,
  });
  return { agent, calls, sent, owned: () => owned };
}

describe('Agent (fake kernel and network)', () => {
  test('programs the farm before listening; alone, takes every bucket after the startup grace', async () => {
    const r = rig();
    await r.agent.start();
    try {
      expect(r.calls.slice(0, 2)).toEqual(['program unit', 'own 0']);
      expect(r.owned()).toEqual([]);
      await new Promise((res) => setTimeout(res, 400));
      expect(r.owned()).toHaveLength(16);
      expect(r.agent.ready().ready).toBe(true);
      const last = decodeHeartbeat(r.sent[r.sent.length - 1], KEY, 'unit');
      expect(last.ok && last.msg.held.length).toBe(16);
      expect(last.ok && last.msg.viewDigest).not.toBe(0);
    } finally {
      await r.agent.stop();
    }
  });

  test('stop removes the kernel state before telling peers it holds nothing, then closes the socket', async () => {
    const r = rig();
    await r.agent.start();
    await new Promise((res) => setTimeout(res, 400));
    r.calls.length = 0;
    await r.agent.stop();
    expect(r.calls).toEqual(['remove', 'send', 'close']);
    const bye = decodeHeartbeat(r.sent[r.sent.length - 1], KEY, 'unit');
    expect(bye.ok && bye.msg.state).toBe('down');
    expect(bye.ok && bye.msg.held).toEqual([]);
  });

  test('drain gives up every bucket and reports what is left', async () => {
    const r = rig();
    await r.agent.start();
    try {
      await new Promise((res) => setTimeout(res, 400));
      const res = await r.agent.drain(1000);
      expect(res.remaining).toBe(0);
      expect(r.owned()).toEqual([]);
      expect(r.agent.ready()).toEqual({ ready: false, reason: 'draining' });
    } finally {
      await r.agent.stop();
    }
  });
});
