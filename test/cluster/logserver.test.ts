import { parseLogUrl, tailLines } from '../../lab/cluster/logserver.js';

describe('tailLines', () => {
  test.each([
    ['a\nb\nc\n', 2, 'b\nc\n'],
    ['a\nb\nc\n', 5, 'a\nb\nc\n'],
    ['a\nb\nc', 1, 'c'],
    ['a\nb\nc\n', -1, 'a\nb\nc\n'],
    ['a\nb\n', 0, ''],
    ['', 3, ''],
    ['\n\n', 1, '\n'],
  ])('%j, %i -> %j', (text, n, out) => expect(tailLines(text, n)).toBe(out));
});

describe('parseLogUrl', () => {
  test('path and the query kubectl sends', () => {
    expect(parseLogUrl('/containerLogs/vf-test/agent-x/main?follow=true&tailLines=10')).toEqual({
      namespace: 'vf-test', pod: 'agent-x', container: 'main', follow: true, tailLines: 10, limitBytes: -1,
    });
    expect(parseLogUrl('/containerLogs/ns/p/c')).toMatchObject({ follow: false, tailLines: -1, limitBytes: -1 });
    expect(parseLogUrl('/containerLogs/ns/p/c?limitBytes=5&tailLines=x')).toMatchObject({ tailLines: -1, limitBytes: 5 });
  });
  test('other paths are not logs', () => {
    expect(parseLogUrl('/containerLogs/ns/p')).toBeUndefined();
    expect(parseLogUrl('/exec/ns/p/c')).toBeUndefined();
    expect(parseLogUrl('/containerLogs/ns/p/c/extra')).toBeUndefined();
  });
});
