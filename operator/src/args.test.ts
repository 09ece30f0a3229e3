import { HELP, parseArgs } from './args.js';

describe('parseArgs', () => {
  test('defaults', () => {
    const r = parseArgs([], {});
    if (!r.ok) throw new Error('expected ok');
    expect(r.options).toMatchObject({
      httpPort: 8080, leaderElect: true, leaseNamespace: 'vipfarm-system', leaseName: 'vipfarm-operator', concurrency: 2, finalizerTimeoutMs: 300_000, memberGraceMs: 60_000,
      settings: { agentEntrypoint: '/app/dist/agent/src/main.js', nodeBinary: 'node', imagePullPolicy: 'IfNotPresent' },
    });
    expect(r.options.namespace).toBeUndefined();
  });

  test('flags in both forms, env fallbacks', () => {
    const r = parseArgs(['--agent-entrypoint', '/repo/dist/agent/src/main.js', '--http-port=0', '--leader-elect', 'false', '--namespace=ns1'], { POD_NAMESPACE: 'ops', POD_NAME: 'op-1' });
    if (!r.ok) throw new Error('expected ok');
    expect(r.options.settings.agentEntrypoint).toBe('/repo/dist/agent/src/main.js');
    expect(r.options).toMatchObject({ httpPort: 0, leaderElect: false, namespace: 'ns1', leaseNamespace: 'ops', identity: 'op-1' });
  });

  test.each([
    [['--bogus'], /unknown argument "--bogus"/],
    [['--http-port', '70000'], /--http-port must be an integer 0..65535/],
    [['--concurrency', '0'], /--concurrency/],
    [['--member-grace', '-1'], /--member-grace must be an integer/],
    [['--image-pull-policy', 'Sometimes'], /image-pull-policy/],
    [['--leader-elect', 'yes'], /leader-elect must be true or false/],
    [['--kubeconfig'], /--kubeconfig needs a value/],
    [['positional'], /unknown argument/],
  ])('%j is refused', (argv, msg) => {
    const r = parseArgs(argv as string[]);
    expect(r.ok).toBe(false);
    expect(!r.ok && !r.help ? r.error : '').toMatch(msg);
  });

  test('--help', () => {
    expect(parseArgs(['--namespace', 'x', '--help'])).toEqual({ ok: false, help: true });
    for (const flag of ['--agent-entrypoint', '--leader-elect', '--finalizer-timeout', '--http-port']) expect(HELP).toContain(flag);
  });
});
