// Planned changes with real agents: an application checker failing and recovering, a
// drain that keeps established connections, a node joining a running farm.
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentFarm } from '../../lab/agent/farm.js';
import { Holder } from '../../lab/netns/procs.js';

jest.setTimeout(90_000);

describe('agent lifecycle', () => {
  let farm: AgentFarm | undefined;
  afterEach(async () => {
    await farm?.destroy();
    farm = undefined;
  });

  test('a failing checker takes the node out, recovery brings it back', async () => {
    const f = (farm = new AgentFarm({ nodes: 3, appChecker: true }));
    await f.startAll();
    await f.waitReady();
    const n2 = f.node('n2');
    expect((await f.owners()).shares.n2).toBeGreaterThan(0);

    f.stopApp(n2);
    await f.waitLog(n2, (l) => l.event === 'checker_down' && l.checker === 'app');
    await f.waitLog(n2, (l) => l.event === 'buckets' && l.owned === 0);
    const out = await f.owners();
    expect(out.unserved).toEqual([]);
    expect(out.shares.n2).toBeUndefined();
    expect(f.metric(n2, 'vipfarm_checker_up', 'checker="app"')).toBe(0);

    await f.startApp(n2);
    await f.waitLog(n2, (l) => l.event === 'checker_up');
    await f.waitLog(n2, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    await new Promise((r) => setTimeout(r, 500));
    const back = await f.owners();
    expect(back.unserved).toEqual([]);
    expect(Math.abs(back.shares.n2 - f.bucketCount / 3)).toBeLessThanOrEqual(1);
  });

  test('drain (SIGUSR1): new connections go elsewhere, established ones stay until they end', async () => {
    const f = (farm = new AgentFarm({ nodes: 3 }));
    for (const n of f.tb.nodes) await f.startApp(n);
    for (const n of f.tb.nodes) f.startAgent(n, {}, ['--drain-timeout', '20']);
    await f.waitReady();
    const holder = Holder.start(f.tb, f.client, { vip: f.vip, port: 8080, count: 30, pingMs: 50 });
    const opened = await holder.opened();
    const onN2 = opened.filter((c) => c.node === 'n2').length;
    expect(onN2).toBeGreaterThan(0);

    const n2 = f.node('n2');
    f.agents.get('n2')!.proc.kill('SIGUSR1');
    await f.waitLog(n2, (l) => l.event === 'buckets' && l.owned === 0);
    await new Promise((r) => setTimeout(r, 300));
    const during = await f.owners();
    expect(during.unserved).toEqual([]);
    expect(during.shares.n2).toBeUndefined();
    // still draining: its connections are alive
    expect(f.agents.get('n2')!.proc.exitCode).toBeNull();

    const summary = await holder.stop();
    const broken = summary.filter((c) => c.error !== null || c.echoed < c.sent - 2);
    expect(broken).toEqual([]);
    expect(summary.filter((c) => c.node === 'n2').every((c) => c.echoed > 0)).toBe(true);

    // the holder closed them: the drain ends early, the agent leaves and cleans the kernel
    const code = await Promise.race([f.agents.get('n2')!.exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
    expect(code).toBe(0);
    const done = await f.waitLog(n2, (l) => l.event === 'drain_done');
    expect(done.remaining).toBe(0);
    expect(f.tb.exec(n2.netns, ['nft', 'list', 'tables'])).not.toMatch(/vipfarm/);
    expect(f.tb.exec(n2.netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo'])).not.toContain(f.vip);
  });

  test('a node joining takes its share without breaking connections', async () => {
    const f = (farm = new AgentFarm({ nodes: 3 }));
    const [n1, n2, n3] = f.tb.nodes;
    for (const n of f.tb.nodes) await f.startApp(n);
    f.startAgent(n1);
    f.startAgent(n2);
    await f.waitReady([n1, n2]);
    const two = await f.owners();
    expect(Object.keys(two.shares).sort()).toEqual(['n1', 'n2']);
    const holder = Holder.start(f.tb, f.client, { vip: f.vip, port: 8080, count: 40, pingMs: 50 });
    await holder.opened();

    f.startAgent(n3);
    await f.waitReady([n3]);
    await f.waitLog(n3, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    await new Promise((r) => setTimeout(r, 500));
    const three = await f.owners();
    expect(three.unserved).toEqual([]);
    for (const n of ['n1', 'n2', 'n3']) expect(Math.abs(three.shares[n] - f.bucketCount / 3)).toBeLessThanOrEqual(1);
    // few buckets move: the newcomer's share, plus at most as many again between the others
    const moved = Object.entries(three.owners).filter(([b, owner]) => two.owners[Number(b)] !== owner).length;
    expect(moved).toBeGreaterThanOrEqual(three.shares.n3);
    expect(moved).toBeLessThanOrEqual(2 * three.shares.n3);
    const summary = await holder.stop();
    expect(summary.filter((c) => c.error !== null || c.echoed < c.sent - 2)).toEqual([]);
  });

  test('weight 0 is a standby member; SIGHUP reloads and refuses a bad file; SIGTERM removes the kernel state', async () => {
    const f = (farm = new AgentFarm({ nodes: 3 }));
    const [n1, n2, n3] = f.tb.nodes;
    for (const n of f.tb.nodes) await f.startApp(n);
    f.startAgent(n1);
    f.startAgent(n2);
    const standby = f.startAgent(n3, { node: { name: n3.name, address: n3.ip, weight: 0 } });
    await f.waitReady([n1, n2]);
    await f.waitLog(n3, (l) => l.event === 'state' && l.state === 'standby' && l.phase === 'running');
    const two = await f.owners();
    expect(two.unserved).toEqual([]);
    expect(Object.keys(two.shares).sort()).toEqual(['n1', 'n2']);
    expect(f.metric(n1, 'vipfarm_members', 'state="standby"')).toBe(1);

    // a broken file on SIGHUP: refused, the running config stays
    f.tb.exec(n3.netns, ['sh', '-c', `echo 'rules: [' > ${f.dir}/n3.yaml`]);
    standby.proc.kill('SIGHUP');
    await f.waitLog(n3, (l) => l.event === 'reload_error');
    expect(standby.proc.exitCode).toBeNull();
    // weight 1 on SIGHUP: it takes its share
    f.writeConfig(n3);
    standby.proc.kill('SIGHUP');
    await f.waitLog(n3, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    await new Promise((r) => setTimeout(r, 300));
    const three = await f.owners();
    expect(Math.abs(three.shares.n3 - f.bucketCount / 3)).toBeLessThanOrEqual(1);

    // SIGTERM: a short drain, then nothing of ours is left in n3's kernel
    expect(await f.kill(n3, 'SIGTERM')).toBe(0);
    expect(f.tb.exec(n3.netns, ['nft', 'list', 'tables'])).not.toMatch(/vipfarm/);
    expect(f.tb.exec(n3.netns, ['ip', '-4', 'addr', 'show', 'dev', 'lo'])).not.toContain(f.vip);
    expect(f.tb.exec(n3.netns, ['sysctl', '-n', 'net.ipv4.conf.eth0.arp_ignore']).trim()).toBe('0');
    const after = await f.owners();
    expect(after.unserved).toEqual([]);
    expect(Object.keys(after.shares).sort()).toEqual(['n1', 'n2']);
  });

  test('SIGHUP with a file the kernel refuses (no such interface, and a new key): farm, key and peers stay; the corrected file is applied', async () => {
    const f = (farm = new AgentFarm({ nodes: 3 }));
    const [n1, n2, n3] = f.tb.nodes;
    for (const n of f.tb.nodes) await f.startApp(n);
    f.startAgent(n1);
    f.startAgent(n2);
    const a3 = f.startAgent(n3);
    await f.waitReady();
    const newKey = join(f.dir, 'other.key');
    writeFileSync(newKey, randomBytes(32), { mode: 0o600 });
    const twoPorts = [{ port: 8080, protocol: 'tcp', affinity: 'ClientIPAndPort' }, { port: 8081, protocol: 'tcp', affinity: 'ClientIP' }];
    f.writeConfig(n3, { interface: 'nosuch0', keyFile: newKey, rules: twoPorts });
    // Only what follows the reload: the start's nonce handshake rejects first heartbeats (no_echo) by design.
    const seen = new Map([n1, n2].map((n) => [n.name, f.agents.get(n.name)!.logs.length]));
    a3.proc.kill('SIGHUP');
    const refused = await f.waitLog(n3, (l) => l.event === 'reload_error');
    expect(String(refused.error)).toMatch(/nosuch0/);
    // Had the key been swapped before the refusal, n1 and n2 would reject n3's heartbeats
    // and declare it dead after the threshold; had the farm been, its tables would be gone.
    await new Promise((r) => setTimeout(r, 1500));
    for (const n of [n1, n2]) expect(f.agents.get(n.name)!.logs.slice(seen.get(n.name)).filter((l) => l.event === 'peer_dead' || l.event === 'heartbeat_rejected')).toEqual([]);
    const during = await f.owners();
    expect(during.unserved).toEqual([]);
    expect(Math.abs(during.shares.n3 - f.bucketCount / 3)).toBeLessThanOrEqual(1);
    expect(f.tb.exec(n3.netns, ['nft', 'list', 'table', 'netdev', `vipfarm_${f.name}_in`])).toContain(n3.iface);
    expect(a3.logs.some((l) => l.event === 'reconfigured')).toBe(false);

    // corrected: the right interface and key, the new port: applied
    f.writeConfig(n3, { rules: twoPorts });
    a3.proc.kill('SIGHUP');
    const applied = await f.waitLog(n3, (l) => l.event === 'reconfigured');
    expect(JSON.stringify(applied.rules)).toContain('8081');
    await f.waitLog(n3, (l) => l.event === 'reload');
    expect(f.tb.exec(n3.netns, ['nft', 'list', 'table', 'inet', `vipfarm_${f.name}`])).toContain('8081');
    const after = await f.owners();
    expect(after.unserved).toEqual([]);
  });
});
