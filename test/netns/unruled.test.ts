// What no rule covers, with real agents in network namespaces: ports without a rule get
// no answer from any node, and an echo request to the VIP is answered by exactly one node,
// the owner of the client address's ClientIP bucket.
import { jest } from '@jest/globals';
import { join } from 'node:path';
import { bucketOf } from '../../common/src/jhash.js';
import { AgentFarm, distRoot, METRICS_PORT } from '../../lab/agent/farm.js';

jest.setTimeout(120_000);

const ICMP_ECHO = join(distRoot, '..', 'lab/netns/helpers/icmp-echo.py');

describe('VIP traffic no rule covers', () => {
  let farm: AgentFarm;
  beforeAll(async () => {
    farm = new AgentFarm({ nodes: 3, bucketCount: 16 });
    await farm.startAll();
    await farm.waitReady();
  });
  afterAll(async () => {
    await farm.destroy();
  });

  /** packets counted by the rule with this comment suffix on a node's farm chain */
  function ruleCount(node: string, suffix: string): number {
    const text = farm.tb.exec(farm.node(node).netns, ['nft', 'list', 'chain', 'inet', 'vipfarm_demo', 'pre']);
    const line = text.split('\n').find((l) => l.includes(`comment "vipfarm ${farm.vip} ${suffix}"`));
    if (!line) throw new Error(`no rule "${suffix}" on ${node}:\n${text}`);
    return Number(/counter packets (\d+)/.exec(line)![1]);
  }

  test('a port without a rule (the agents\' own /metrics included) is answered by no node', () => {
    // the port is open on every node: through the node address it answers
    const direct = farm.tb.exec(farm.client.netns, [process.execPath, '-e', `
      const s=require('net').connect(${METRICS_PORT},'${farm.tb.nodes[0].ip}');
      s.on('connect',()=>{console.log('open');s.destroy()});s.on('error',e=>console.log(e.code));`]).trim();
    expect(direct).toBe('open');
    const before = farm.tb.nodes.map((n) => ruleCount(n.name, 'other drop'));
    // 20 connections from different source ports: none may connect or be refused (a RST is an answer)
    const out = farm.tb.exec(farm.client.netns, [process.execPath, '-e', `
      const net=require('net');let left=20;const r={};
      for(let i=0;i<20;i++){const s=net.connect({port:${METRICS_PORT},host:'${farm.vip}'});
        const done=(k)=>{r[k]=(r[k]||0)+1;s.destroy();if(--left===0)console.log(JSON.stringify(r));};
        s.setTimeout(1500,()=>done('timeout'));s.on('connect',()=>done('connected'));s.on('error',(e)=>done(e.code));}`]).trim();
    expect(JSON.parse(out)).toEqual({ timeout: 20 });
    const after = farm.tb.nodes.map((n) => ruleCount(n.name, 'other drop'));
    // every node saw the SYNs (the switch floods the virtual MAC) and dropped them
    for (let i = 0; i < after.length; i++) expect(after[i] - before[i]).toBeGreaterThanOrEqual(20);
  });

  test('an echo request to the VIP gets exactly one reply, from the owner of the source\'s ClientIP bucket', async () => {
    const { owners } = await farm.owners();
    const sources = farm.tb.addAddresses(farm.client, 12);
    const seen = new Set<string>();
    for (const src of sources) {
      const expected = owners[bucketOf(src, undefined, 'ClientIP', farm.bucketCount, farm.seed)];
      expect(expected).toBeDefined();
      seen.add(expected);
      const before = Object.fromEntries(farm.tb.nodes.map((n) => [n.name, ruleCount(n.name, 'echo owned')]));
      const r = JSON.parse(farm.tb.exec(farm.client.netns, ['python3', ICMP_ECHO, src, farm.vip, '3', '1'])) as { replies: Record<string, number> };
      expect(r.replies).toEqual({ 0: 1, 1: 1, 2: 1 });
      const answered = farm.tb.nodes.filter((n) => ruleCount(n.name, 'echo owned') - before[n.name] > 0).map((n) => n.name);
      expect({ src, answered }).toEqual({ src, answered: [expected] });
    }
    // the 12 addresses spread over more than one node, so "the owner" was really tested
    expect(seen.size).toBeGreaterThan(1);
  });
});
