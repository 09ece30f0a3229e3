import { createLogger } from '../../common/src/log.js';
import { parseFarmSpec } from '../../common/src/config/index.js';
import type { DataplaneFarm, FarmConfig } from '../../common/src/types.js';
import { Agent } from './agent.js';
import type { Datapath } from './edges/datapath.js';
import { decodeHeartbeat } from './core/heartbeat-codec.js';
import { AgentMetrics } from './edges/metrics.js';
import type { HeartbeatTransport } from './edges/transport.js';

const KEY = Buffer.alloc(32, 7);

function farm(extra: Record<string, unknown> = {}): FarmConfig {
  const r = parseFarmSpec({ virtualIPs: ['10.9.0.100'], interface: 'eth0', rules: [{ port: 80, protocol: 'tcp', affinity: 'ClientIP' }], bucketCount: 16, ...extra }, { name: 'unit' });
  if (!r.ok) throw new Error('bad test farm');
  return r.value;
}

function rig(f: FarmConfig = farm(), refuse?: (f: DataplaneFarm) => boolean): { agent: Agent; calls: string[]; sent: Buffer[]; owned: () => number[] } {
  const calls: string[] = [];
  const sent: Buffer[] = [];
  let owned: number[] = [];
  const datapath: Datapath = {
    program: (f: DataplaneFarm) => {
      if (refuse?.(f)) throw new Error(`interface ${f.interface}: No such device`);
      calls.push(`program ${f.name}`);
    },
    setOwnership: (o) => {
      owned = o;
      calls.push(`own ${o.length}`);
    },
    setServiceOwnership: (services) => void calls.push(`own services ${services.map((x) => `${x.ip}:${x.owned.length}`).join(',')}`),
    counters: () => [],
    missing: () => [],
    remove: () => void calls.push('remove'),
    detach: () => void calls.push('detach'),
    present: () => false,
  };
  const transport: HeartbeatTransport = {
    start: async () => void calls.push('listen'),
    send: (buf, to) => {
      sent.push(buf);
      calls.push('send');
      return to.length;
    },
    stop: async () => void calls.push('close'),
  };
  const log = createLogger('test');
  log.silent = true;
  const agent = new Agent({
    farm: f, self: { name: 'n1', address: '10.9.0.1', weight: 1 }, peers: [{ name: 'n1', address: '10.9.0.1' }],
    key: KEY, datapath, transport, metrics: new AgentMetrics('unit', 'n1'), log, established: () => 0,
    probe: async () => ({ ok: true }),
  });
  return { agent, calls, sent, owned: () => owned };
}

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('Agent (fake kernel and network)', () => {
  test('programs the farm before listening; alone, takes every bucket after the startup grace', async () => {
    const r = rig();
    await r.agent.start();
    try {
      expect(r.calls.slice(0, 2)).toEqual(['program unit', 'own 0']);
      expect(r.owned()).toEqual([]);
      // the startup grace, then every bucket (a loaded machine may take longer than 400 ms)
      await until(() => r.owned().length === 16);
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

  test('a rollout: the handover gives up every bucket, stop leaves the kernel state (detach) and says it holds nothing', async () => {
    const r = rig();
    await r.agent.start();
    await until(() => r.owned().length === 16);
    // alone: no peer takes the buckets, so the handover ends at its deadline, not before
    const t0 = Date.now();
    const h = await r.agent.handOver(300);
    expect(h.handedOff).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(r.owned()).toEqual([]);
    r.calls.length = 0;
    await r.agent.stop({ keepKernelState: true });
    expect(r.calls).toEqual(['detach', 'send', 'close']);
    const bye = decodeHeartbeat(r.sent[r.sent.length - 1], KEY, 'unit');
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

  test('a reconfiguration the kernel refuses changes nothing: farm, key and claims stay', async () => {
    const r = rig(farm(), (f) => f.interface === 'nosuch0');
    await r.agent.start();
    try {
      await until(() => r.owned().length === 16);
      const before = r.agent.current();
      expect(() => r.agent.reconfigure({ farm: farm({ interface: 'nosuch0' }), self: { name: 'n1', address: '10.9.0.1', weight: 3 }, key: Buffer.alloc(32, 9) })).toThrow(/nosuch0/);
      expect(r.agent.current()).toBe(before);
      const sentBefore = r.sent.length;
      // the heartbeats that follow are still signed with the old key and claim the old weight
      await until(() => r.sent.length > sentBefore + 2);
      for (const buf of r.sent.slice(sentBefore)) {
        const hb = decodeHeartbeat(buf, KEY, 'unit');
        expect(hb.ok && hb.msg.weight).toBe(1);
      }
    } finally {
      await r.agent.stop();
    }
  });

  test('a spec edit keeps the state of unchanged checkers: the node does not leave the farm until they rise again', async () => {
    const checker = { name: 'app', type: 'tcp', port: 80, intervalMs: 100, timeoutMs: 50, rise: 3, fall: 3 };
    const r = rig(farm({ checkers: [checker] }));
    await r.agent.start();
    try {
      await until(() => r.owned().length === 16);
      r.calls.length = 0;
      r.agent.reconfigure({ farm: farm({ checkers: [checker], rules: [{ port: 81, protocol: 'tcp', affinity: 'ClientIP' }] }), self: { name: 'n1', address: '10.9.0.1', weight: 1 } });
      await new Promise((res) => setTimeout(res, 150));
      expect(r.calls.filter((c) => c === 'own 0')).toEqual([]);
      expect(r.agent.ready().ready).toBe(true);
    } finally {
      await r.agent.stop();
    }
  });
});

describe('Agent: the network self-test in its status entry', () => {
  /** two agents on a fake network: UDP always arrives; frames to the virtual MAC (L2) only when `flooding` */
  function pair(flooding: boolean, extra: Record<string, unknown> = {}): { agents: Agent[]; stop: () => Promise<void> } {
    const f = farm({ heartbeat: { intervalMs: 50, failureThresholdMs: 200 }, ...extra });
    const nodes = [{ name: 'n1', address: '10.9.0.1' }, { name: 'n2', address: '10.9.0.2' }];
    const inbox: ((buf: Buffer, from: string, path: 'udp' | 'l2') => void)[] = [];
    const agents = nodes.map((self, i) => {
      const noop = (): void => {};
      const datapath: Datapath = {
        program: noop, setOwnership: noop, setServiceOwnership: noop, counters: () => [], missing: () => [], remove: noop, detach: noop, present: () => false,
      };
      const transport: HeartbeatTransport = {
        start: async (on) => void (inbox[i] = on),
        send: (buf) => {
          const other = inbox[1 - i];
          other?.(buf, self.address, 'udp');
          if (flooding) other?.(buf, `02:00:00:00:00:0${i + 1}`, 'l2');
          return 1;
        },
        // a stopped agent hears nothing more (the peer's goodbye would arm its loop again)
        stop: async () => void delete inbox[i],
      };
      const log = createLogger('test');
      log.silent = true;
      return new Agent({
        farm: f, self: { ...self, weight: 1 }, peers: nodes, key: KEY, datapath, transport, metrics: new AgentMetrics('unit', self.name), log,
        established: () => 0, probe: async () => ({ ok: true }),
      });
    });
    return { agents, stop: async () => void (await Promise.all(agents.map((a) => a.stop()))) };
  }

  test('no frames to the virtual MAC: floods false naming the peer; with them: true', async () => {
    for (const flooding of [false, true]) {
      const p = pair(flooding);
      await Promise.all(p.agents.map((a) => a.start()));
      try {
        expect(p.agents[0].status().networkFloods).toBeUndefined(); // not judged before the window
        await until(() => p.agents.every((a) => a.status().networkFloods !== undefined), 8000);
        expect(p.agents.map((a) => a.status().networkFloods)).toEqual(
          flooding ? [{ floods: true, unseenFrom: [] }, { floods: true, unseenFrom: [] }] : [{ floods: false, unseenFrom: ['n2'] }, { floods: false, unseenFrom: ['n1'] }],
        );
      } finally {
        await p.stop();
      }
    }
  });

  test('Directed mode reports nothing (it does not need flooding)', async () => {
    const p = pair(false, { mode: 'Directed' });
    await Promise.all(p.agents.map((a) => a.start()));
    try {
      await new Promise((res) => setTimeout(res, 1800));
      expect(p.agents.map((a) => a.status().networkFloods)).toEqual([undefined, undefined]);
    } finally {
      await p.stop();
    }
  });
});
