// The pure parts of the takeover benches: the phase split of one failover and keepalived's configuration.
import { takeoverPhases } from './failover.js';
import { keepalivedConfig } from './peers.js';

const at = (ms: number): string => new Date(ms).toISOString();

describe('takeoverPhases', () => {
  test('splits a takeover by the survivor that finished last', () => {
    const killedAt = 1_000_000;
    const failovers = [
      // n2: last heartbeat 30 ms before the kill, declared 90 ms after it, took its buckets 2 ms later
      { event: 'failover', timestamp: at(killedAt + 92), sinceLastHeartbeatMs: 122, agreeMs: 2, programMs: 0.3 },
      // n3 finished later: it waited 10 ms for the agreement
      { event: 'failover', timestamp: at(killedAt + 101), sinceLastHeartbeatMs: 131, agreeMs: 10, programMs: 0.5 },
    ];
    expect(takeoverPhases(killedAt, failovers, [killedAt + 95, killedAt + 104, killedAt + 99])).toEqual({
      totalMs: 104, heardBeforeKillMs: 30, detectMs: 91, agreeMs: 10, programMs: 0.5, clientMs: 3,
    });
  });

  test('a heartbeat heard after the cut shows as a negative lead', () => {
    const t = takeoverPhases(5000, [{ timestamp: at(5130), sinceLastHeartbeatMs: 122, agreeMs: 1, programMs: 0.2 }], [5140]);
    expect(t.heardBeforeKillMs).toBe(-8);
    expect(t.detectMs + t.agreeMs + t.clientMs).toBe(t.totalMs);
  });
});

describe('keepalivedConfig', () => {
  test('one VRRPv3 instance with the interval, priority and the VIP on the interface', () => {
    const c = keepalivedConfig({ router: 'n2', iface: 'eth0', vip: '10.201.0.200', priority: 130, advertInt: 0.05 });
    expect(c).toContain('vrrp_version 3');
    expect(c).toMatch(/advert_int 0\.05\n/);
    expect(c).toMatch(/priority 130\n/);
    expect(c).toMatch(/interface eth0\n/);
    expect(c).toContain('10.201.0.200/32 dev eth0');
    // braces balance: keepalived refuses the file otherwise
    expect(c.split('{').length).toBe(c.split('}').length);
  });
});
