// Faults of the node itself, with real agent processes in network namespaces: a second
// agent of the same farm on the node, and kernel state removed under a running agent.
import { jest } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { AGENT_MAIN, AgentFarm, METRICS_PORT } from '../../lab/agent/farm.js';

jest.setTimeout(120_000);

describe('one agent per farm per node', () => {
  let farm: AgentFarm;
  beforeAll(async () => {
    farm = new AgentFarm({ nodes: 2 });
    await farm.startAll();
    await farm.waitReady();
  });
  afterAll(async () => {
    await farm.destroy();
  });

  test('a second agent for the same farm and node (only metricsPort differs) refuses to start and leaves the first alone', async () => {
    const n1 = farm.node('n1');
    const before = await farm.owners();
    expect(before.unserved).toEqual([]);
    const path = join(farm.dir, 'n1-second.yaml');
    writeFileSync(path, yaml.dump(farm.config(n1, { metricsPort: METRICS_PORT + 1 })));
    const t0 = Date.now();
    const second = farm.tb.spawn(n1.netns, [process.execPath, AGENT_MAIN, '--config', path], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIPFARM_RUN_DIR: join(farm.dir, 'run') },
    });
    let stderr = '';
    second.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    second.stdout!.resume();
    const code = await new Promise<number | null | 'running'>((r) => {
      second.once('exit', (c) => r(c));
      setTimeout(() => r('running'), 15_000);
    });
    if (code === 'running') second.kill('SIGKILL');
    expect(code).toBe(3);
    expect(stderr).toMatch(/another vipfarm-agent already runs this farm on this node/);
    // 2 heartbeat thresholds later: nobody saw a peer die, the first agent's kernel state is whole
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 3000 - Date.now())));
    for (const n of farm.tb.nodes) {
      expect(farm.agents.get(n.name)!.logs.filter((l) => l.event === 'peer_dead' || l.event === 'datapath_error')).toEqual([]);
    }
    expect(farm.tb.exec(n1.netns, ['nft', 'list', 'tables'])).toMatch(/vipfarm_demo\b/);
    expect(farm.tb.exec(n1.netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo'])).toContain(farm.vip);
    const after = await farm.owners();
    expect(after.unserved).toEqual([]);
    expect(after.owners).toEqual(before.owners);
  });

  test.each([
    ['nft delete table inet vipfarm_demo', ['nft', 'delete', 'table', 'inet', 'vipfarm_demo'], 'nft_inet'],
    ['nft flush table inet vipfarm_demo', ['nft', 'flush', 'table', 'inet', 'vipfarm_demo'], 'nft_inet'],
    ['the VIP deleted from lo', null, 'vip'],
    ['nft flush ruleset', ['nft', 'flush', 'ruleset'], 'nft_netdev'],
  ] as [string, string[] | null, string][])('%s under a running agent: noticed, counted, restored, traffic served again', async (_what, argv, what) => {
    const n1 = farm.node('n1');
    const a = farm.agents.get('n1')!;
    const restoresBefore = farm.metric(n1, 'vipfarm_kernel_restores_total', `what="${what}"`);
    const seen = a.logs.length;
    const t0 = Date.now();
    farm.tb.exec(n1.netns, argv ?? ['ip', 'addr', 'del', `${farm.vip}/32`, 'dev', 'lo']);
    const deadline = 5_000;
    const lost = await farm.waitLog(n1, (l) => a.logs.indexOf(l) >= seen && l.event === 'kernel_state_lost', deadline);
    await farm.waitLog(n1, (l) => a.logs.indexOf(l) >= seen && l.event === 'kernel_state_restored', deadline);
    const tookMs = Date.now() - t0;
    expect(tookMs).toBeLessThan(deadline);
    expect(JSON.stringify(lost.lost)).toMatch(what === 'vip' ? /on lo: absent/ : /table/);
    expect(farm.metric(n1, 'vipfarm_kernel_restores_total', `what="${what}"`)).toBe(restoresBefore + 1);
    expect(farm.tb.exec(n1.netns, ['nft', 'list', 'tables'])).toMatch(/inet vipfarm_demo\b/);
    expect(farm.tb.exec(n1.netns, ['nft', 'list', 'tables'])).toMatch(/netdev vipfarm_demo_in\b/);
    expect(farm.tb.exec(n1.netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo'])).toContain(farm.vip);
    // every bucket answered again, n1 its share
    await farm.waitLog(n1, (l) => a.logs.indexOf(l) >= seen && l.event === 'buckets' && Number(l.owned) > 0, deadline).catch(() => undefined);
    const t1 = Date.now();
    let out = await farm.owners();
    while ((out.unserved.length > 0 || !out.shares.n1) && Date.now() - t1 < 15_000) out = await farm.owners();
    expect(out.unserved).toEqual([]);
    expect(Math.abs(out.shares.n1 - farm.bucketCount / 2)).toBeLessThanOrEqual(1);
    expect(Number(farm.metric(n1, 'vipfarm_buckets_owned'))).toBe(out.shares.n1);
  });
});

describe('sysctls through live VIP and interface changes (file mode, SIGHUP)', () => {
  let farm: AgentFarm;
  beforeAll(() => {
    farm = new AgentFarm({ nodes: 1 });
  });
  afterAll(async () => {
    await farm.destroy();
  });

  const KEYS = ['arp_ignore', 'arp_announce', 'rp_filter'];
  function read(netns: string, dev: string): Record<string, string> {
    return Object.fromEntries(KEYS.map((k) => [k, farm.tb.exec(netns, ['sysctl', '-n', `net.ipv4.conf.${dev}.${k}`]).trim()]));
  }
  const FARM = { arp_ignore: '1', arp_announce: '2', rp_filter: '0' };

  test('a VIP removed, then the interface changed, then stop: the farm\'s settings where it runs, every original back at the end', async () => {
    const n1 = farm.node('n1');
    const ns = n1.netns;
    // a second interface (a veth pair inside the namespace, removed with it), and originals that are not the defaults, so "restored" cannot pass by accident
    farm.tb.exec(ns, ['ip', 'link', 'add', 'vf1', 'type', 'veth', 'peer', 'name', 'vf1p']);
    for (const l of ['vf1', 'vf1p']) farm.tb.exec(ns, ['ip', 'link', 'set', l, 'up']);
    farm.tb.exec(ns, ['sysctl', '-qw', 'net.ipv4.conf.eth0.arp_announce=1', 'net.ipv4.conf.all.rp_filter=2', 'net.ipv4.conf.vf1.arp_ignore=2', 'net.ipv4.conf.vf1.rp_filter=1']);
    const original = { eth0: read(ns, 'eth0'), vf1: read(ns, 'vf1'), all: read(ns, 'all') };
    const vips = [farm.tb.vip(0), farm.tb.vip(1)];
    await farm.startApp(n1);
    const a = farm.startAgent(n1, { virtualIPs: vips });
    await farm.waitReady();
    expect(read(ns, 'eth0')).toEqual(FARM);
    const lo = (): string => farm.tb.exec(ns, ['ip', '-4', 'addr', 'show', 'dev', 'lo']);
    const reload = async (overrides: Record<string, unknown>): Promise<void> => {
      const seen = a.logs.length;
      farm.writeConfig(n1, overrides);
      a.proc.kill('SIGHUP');
      const r = await farm.waitLog(n1, (l) => a.logs.indexOf(l) >= seen && (l.event === 'reload' || l.event === 'reload_error'));
      expect(r).toMatchObject({ event: 'reload' });
    };

    // one VIP removed: its address goes, the interface keeps the farm's settings
    await reload({ virtualIPs: [vips[0]] });
    expect(lo()).toContain(`${vips[0]}/32`);
    expect(lo()).not.toContain(`${vips[1]}/32`);
    expect(read(ns, 'eth0')).toEqual(FARM);
    expect(read(ns, 'all')).toEqual(FARM);

    // another interface: the farm's settings move there, eth0 gets its own back
    await reload({ virtualIPs: [vips[0]], interface: 'vf1' });
    expect(read(ns, 'vf1')).toEqual(FARM);
    expect(read(ns, 'eth0')).toEqual(original.eth0);
    expect(read(ns, 'all')).toEqual(FARM);
    expect(lo()).toContain(`${vips[0]}/32`);

    // and back, with the second VIP again
    await reload({ virtualIPs: vips });
    expect(read(ns, 'eth0')).toEqual(FARM);
    expect(read(ns, 'vf1')).toEqual(original.vf1);

    expect(await farm.kill(n1, 'SIGTERM')).toBe(0);
    expect({ eth0: read(ns, 'eth0'), vf1: read(ns, 'vf1'), all: read(ns, 'all') }).toEqual(original);
    expect(lo()).not.toContain(vips[0]);
    expect(lo()).not.toContain(vips[1]);
  });
});
