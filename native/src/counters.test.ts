import { aggregateCounters, parseComment, stageCounters } from './counters.js';

describe('parseComment', () => {
  it('reads the rule comments nft_farm.cc writes', () => {
    expect(parseComment('vipfarm 10.99.0.100 80 tcp owned')).toEqual({ vip: '10.99.0.100', port: 80, protocol: 'tcp', stage: 'owned' });
    expect(parseComment('vipfarm 10.1.1.1 53 udp drop')?.stage).toBe('drop');
    expect(parseComment('vipfarm 10.1.1.1 80 tcp foreign')?.stage).toBe('foreign');
    expect(parseComment('vipfarm fd00:0:7::200 443 tcp orphan')).toEqual({ vip: 'fd00:0:7::200', port: 443, protocol: 'tcp', stage: 'orphan' });
  });
  it.each(['vipfarm virtual-mac', 'vipfarm fd00::1 neighbour discovery', 'vipfarm fd00::1 echo owned', 'vipfarm fd00::1 neighbour discovery', 'vipfarm fd00::1 echo owned', 'vipfarm 10.1.1.1 53 sctp drop', 'vipfarm 10.1.1.1 53 udp maybe', 'other 10.1.1.1 53 udp drop'])(
    'ignores %j',
    (c) => expect(parseComment(c)).toBeNull(),
  );
});

describe('aggregateCounters', () => {
  it('sums the accepting stages and keeps drop apart, per VIP and rule', () => {
    const raw = [
      { comment: 'vipfarm 10.0.0.1 80 tcp established', packets: 10, bytes: 1000 },
      { comment: 'vipfarm 10.0.0.1 80 tcp owned', packets: 3, bytes: 180 },
      { comment: 'vipfarm 10.0.0.1 80 tcp orphan', packets: 1, bytes: 60 },
      { comment: 'vipfarm 10.0.0.1 80 tcp drop', packets: 7, bytes: 420 },
      { comment: 'vipfarm 10.0.0.2 80 tcp owned', packets: 2, bytes: 120 },
      { comment: 'vipfarm virtual-mac', packets: 99, bytes: 9900 },
      // the raw chain's foreign SYN drops (listed after the pre chain) count as drops
      { comment: 'vipfarm 10.0.0.1 80 tcp foreign', packets: 5, bytes: 300 },
    ];
    const agg = aggregateCounters(stageCounters(raw));
    expect(agg).toEqual([
      { vip: '10.0.0.1', port: 80, protocol: 'tcp', verdict: 'accept', packets: 14, bytes: 1240 },
      { vip: '10.0.0.1', port: 80, protocol: 'tcp', verdict: 'drop', packets: 12, bytes: 720 },
      { vip: '10.0.0.2', port: 80, protocol: 'tcp', verdict: 'accept', packets: 2, bytes: 120 },
    ]);
  });
});
