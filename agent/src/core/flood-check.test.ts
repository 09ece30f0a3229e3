import { checkFlooding, type PathTimes } from './flood-check.js';

const W = 1000;
const peers = (entries: [string, PathTimes][]): Map<string, PathTimes> => new Map(entries);

test('nothing to judge before a peer was heard for the window', () => {
  expect(checkFlooding(peers([['b', { since: 9500, udp: 9900, l2: 0 }]]), new Set(['b']), 10_000, W)).toEqual({ unseen: [] });
});

test('peers heard on UDP but not on L2 for the window: the virtual MAC is not flooded here', () => {
  const p = peers([['c', { since: 0, udp: 9900, l2: 0 }], ['b', { since: 0, udp: 9900, l2: 8000 }], ['d', { since: 0, udp: 9950, l2: 9950 }]]);
  expect(checkFlooding(p, new Set(['b', 'c', 'd']), 10_000, W)).toEqual({ floods: false, unseen: ['b', 'c'] });
});

test('every peer heard on L2 within the window: floods', () => {
  const p = peers([['b', { since: 0, udp: 9900, l2: 9800 }], ['c', { since: 0, udp: 9900, l2: 9100 }]]);
  expect(checkFlooding(p, new Set(['b', 'c']), 10_000, W)).toEqual({ floods: true, unseen: [] });
});

test('dead peers and peers silent on UDP too are not judged (that is a failure, not the switch)', () => {
  const p = peers([['b', { since: 0, udp: 5000, l2: 0 }], ['c', { since: 0, udp: 9900, l2: 0 }]]);
  expect(checkFlooding(p, new Set(['b']), 10_000, W)).toEqual({ unseen: [] });
});
