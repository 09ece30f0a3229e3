import { parseNode, parseUpArgs } from '../../lab/cluster/up-args.js';

describe('parseNode', () => {
  test.each([
    ['n1=10.99.0.11@vf1-n1', { name: 'n1', ip: '10.99.0.11', netns: 'vf1-n1' }],
    ['local=127.0.0.1', { name: 'local', ip: '127.0.0.1', netns: null }],
    ['node-2=10.0.0.2@ns', { name: 'node-2', ip: '10.0.0.2', netns: 'ns' }],
  ])('%s', (spec, node) => expect(parseNode(spec)).toEqual(node));

  test.each([
    ['n1', /NAME=IP/],
    ['N1=10.0.0.1', /not a valid node name/],
    ['n1=10.0.0.256', /not an IPv4/],
    ['n1=host@ns', /not an IPv4/],
    ['-n=10.0.0.1', /not a valid node name/],
  ])('%s is refused', (spec, msg) => expect(() => parseNode(spec)).toThrow(msg));
});

describe('parseUpArgs', () => {
  test('default: one host-namespace node', () => {
    expect(parseUpArgs([])).toEqual({ nodes: [{ name: 'local', ip: '127.0.0.1', netns: null }], help: false });
  });
  test('nodes in order, kubeconfig copy', () => {
    const a = parseUpArgs(['--node', 'n1=10.1.0.1@a', '--node', 'n2=10.1.0.2@b', '--kubeconfig-out', '/tmp/k']);
    expect(a.nodes.map((n) => n.name)).toEqual(['n1', 'n2']);
    expect(a.kubeconfigOut).toBe('/tmp/k');
  });
  test('errors: duplicate node, missing value, unknown flag', () => {
    expect(() => parseUpArgs(['--node', 'n1=10.1.0.1', '--node', 'n1=10.1.0.2'])).toThrow(/given twice/);
    expect(() => parseUpArgs(['--node'])).toThrow(/needs a value/);
    expect(() => parseUpArgs(['--bogus'])).toThrow(/unknown argument --bogus/);
  });
  test('--testbed: count checked, n<k> names left to it', () => {
    expect(parseUpArgs(['--testbed', '3']).testbed).toBe(3);
    expect(() => parseUpArgs(['--testbed', '0'])).toThrow(/1..40/);
    expect(() => parseUpArgs(['--testbed', 'x'])).toThrow(/1..40/);
    expect(() => parseUpArgs(['--testbed', '2', '--node', 'n1=10.0.0.1'])).toThrow(/give --node other names/);
  });
  test('help', () => expect(parseUpArgs(['-h']).help).toBe(true));
});
