// The README's demo: a 3-node farm of network namespaces with real agents, real traffic
// from a client, a node killed with SIGKILL and brought back. Prints a short story.
import { AgentFarm, APP_PORT } from '../../lab/agent/farm.js';
import { bar, bold, say, sleep, Traffic } from './story.js';

async function main(): Promise<void> {
  const farm = new AgentFarm({ nodes: 3, bucketCount: 64 });
  const stop = async (): Promise<void> => {
    await farm.destroy();
  };
  process.on('SIGINT', () => void stop().then(() => process.exit(130)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(143)));
  try {
    const names = farm.tb.nodes.map((n) => n.name);
    say(bold('vipfarm demo: one virtual IP, live on three nodes at once'));
    say(`  nodes   ${farm.tb.nodes.map((n) => `${n.name} ${n.ip}`).join(', ')} (network namespaces on one bridge)`);
    say(`  client  ${farm.client.ip}    VIP ${farm.vip}:${APP_PORT}    ${farm.bucketCount} hash buckets of (client IP, port)`);
    say();
    say(bold('1. Each node runs a small web service and vipfarm-agent'));
    for (const n of farm.tb.nodes) await farm.startApp(n);
    const t0 = Date.now();
    for (const n of farm.tb.nodes) farm.startAgent(n);
    await farm.waitReady();
    await sleep(300);
    const first = await farm.owners();
    say(`   ${Date.now() - t0} ms after their start the agents agree on who owns which bucket, with no coordinator:`);
    say(`   ${names.map((n) => `${n} owns ${first.shares[n] ?? 0} buckets`).join(', ')}`);
    const neigh = farm.tb.exec(farm.client.netns, ['ip', 'neigh', 'show', farm.vip]).trim();
    say(`   the client reached the VIP through ARP: ${neigh || '(no entry)'}`);
    say();

    say(bold('2. Traffic: the client opens connections to the VIP; each lands on exactly one node'));
    let live = true;
    const traffic = new Traffic(farm.tb, farm.client, farm.vip, (w) => {
      if (live) say(`   ${new Date(w.at).toISOString().slice(17, 23)}  ${bar(w.answers, w.failed, names, w.clientErrors)}`);
    });
    await sleep(1500);
    say();

    const victim = farm.node('n2');
    say(bold(`3. ${victim.name} dies: its cable is pulled and its agent gets SIGKILL`));
    farm.tb.setLink(victim, false);
    const killedAt = Date.now();
    await farm.kill(victim);
    const deadBuckets = Object.entries(first.owners).filter(([, n]) => n === victim.name).map(([b]) => Number(b));
    const p = await farm.probe({ buckets: deadBuckets, maxMs: 5000, attemptTimeoutMs: 100 });
    const servedAfter = Date.now() - killedAt;
    await sleep(1200);
    live = false;
    const detect = farm.agents.get('n1')!.logs.find((l) => l.event === 'peer_dead' && l.peer === victim.name);
    say(`   n1 declared ${victim.name} dead ${detect ? `${detect.silentMs} ms after its last heartbeat` : '(not seen)'};`);
    say(`   all ${deadBuckets.length} of its buckets answered again ${servedAfter} ms after the kill` + (p.unserved.length ? ` (${p.unserved.length} still silent!)` : ''));
    const after = await farm.owners();
    say(`   new distribution: ${Object.entries(after.shares).sort().map(([n, c]) => `${n} ${c}`).join(', ')}`);
    say();

    say(bold(`4. ${victim.name} comes back: cable in, agent restarted`));
    live = true;
    farm.tb.setLink(victim, true);
    const backAt = Date.now();
    farm.startAgent(victim);
    await farm.waitReady([victim]);
    await farm.waitLog(victim, (l) => l.event === 'buckets' && Number(l.owned) > 0);
    const rejoinMs = Date.now() - backAt;
    await sleep(1200);
    live = false;
    traffic.stop();
    const back = await farm.owners();
    say(`   it rejoined and took its share back in ${rejoinMs} ms: ${Object.entries(back.shares).sort().map(([n, c]) => `${n} ${c}`).join(', ')}`);
    const total = traffic.windows.reduce((a, w) => a + Object.values(w.answers).reduce((x, y) => x + y, 0), 0);
    const failed = traffic.windows.reduce((a, w) => a + w.failed, 0);
    const own = traffic.windows.reduce((a, w) => a + Object.values(w.clientErrors).reduce((x, y) => x + y, 0), 0);
    say(`   traffic over the whole demo: ${total} connections answered, ${failed} got no answer within 500 ms` + (own ? `, ${own} the client could not open itself` : ''));
    say(`   (SYNs that arrived while a bucket was changing hands; a real client's TCP retransmits them)`);
    say();
  } finally {
    await stop();
    say('5. Cleaned up: agents stopped, namespaces and their nftables tables removed.');
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`demo failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
