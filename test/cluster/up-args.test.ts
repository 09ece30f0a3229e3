import { parseUpArgs } from '../../lab/cluster/up-args.js';

describe('parseUpArgs', () => {
  test('default: 2 nodes, 1 client, no image', () => {
    expect(parseUpArgs([])).toEqual({ nodes: 2, clients: 1, image: false, help: false });
  });
  test('counts, image, kubeconfig copy', () => {
    expect(parseUpArgs(['--nodes', '3', '--clients', '0', '--image', '--kubeconfig-out', '/tmp/k'])).toEqual({ nodes: 3, clients: 0, image: true, kubeconfigOut: '/tmp/k', help: false });
  });
  test.each([
    [['--nodes', '0'], /--nodes 0: expected 1..40/],
    [['--nodes', '41'], /1..40/],
    [['--nodes', 'x'], /1..40/],
    [['--clients', '-1'], /--clients -1: expected 0..40/],
    [['--nodes'], /needs a value/],
    [['--kubeconfig-out'], /needs a value/],
    [['--node', 'n1=10.0.0.1'], /unknown argument --node/],
    [['--bogus'], /unknown argument --bogus/],
  ])('%j is refused', (argv, msg) => expect(() => parseUpArgs(argv)).toThrow(msg));
  test('help', () => expect(parseUpArgs(['-h']).help).toBe(true));
});
