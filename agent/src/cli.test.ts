import { parseAgentArgs } from './cli.js';

describe('agent command line', () => {
  test('standalone with defaults', () => {
    const r = parseAgentArgs(['--config', 'farm.yaml']);
    expect(r).toEqual({ ok: true, options: expect.objectContaining({ mode: 'file', config: 'farm.yaml', drainTimeoutSec: 300, stopTimeoutSec: 5, logLevel: 'info' }) });
  });
  test('help wins', () => {
    expect(parseAgentArgs(['--config', 'x', '--help'])).toMatchObject({ ok: true, options: { mode: 'help' } });
    expect(parseAgentArgs(['-h'])).toMatchObject({ ok: true, options: { mode: 'help' } });
  });
  test('kubernetes mode takes namespace and node from the downward API env', () => {
    const r = parseAgentArgs(['--kubernetes', '--farm', 'web'], { POD_NAMESPACE: 'lb', NODE_NAME: 'n2' });
    expect(r).toMatchObject({ ok: true, options: { mode: 'kubernetes', farm: 'web', namespace: 'lb', node: 'n2' } });
    expect(parseAgentArgs(['--kubernetes', '--farm', 'web'])).toMatchObject({ ok: true, options: { namespace: 'default' } });
  });
  test('check-config', () => {
    expect(parseAgentArgs(['--check-config', 'f.yaml'])).toMatchObject({ ok: true, options: { mode: 'check', config: 'f.yaml' } });
  });
  test.each([
    [[], /missing --config/],
    [['--config'], /--config needs a value/],
    [['--config', '--kubernetes'], /--config needs a value/],
    [['--kubernetes'], /needs --farm/],
    [['--kubernetes', '--farm', 'a', '--config', 'b'], /exclude each other/],
    [['--config', 'f', '--drain-timeout', 'soon'], /--drain-timeout: want seconds/],
    [['--config', 'f', '--stop-timeout', '-1'], /want seconds >= 0/],
    [['--config', 'f', '--log-level', 'loud'], /--log-level: want one of/],
    [['--confg', 'f'], /unknown argument "--confg"/],
  ])('rejects %j', (argv, msg) => {
    const r = parseAgentArgs(argv as string[]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(msg as RegExp);
  });
  test('timeouts are numbers', () => {
    expect(parseAgentArgs(['--config', 'f', '--drain-timeout', '2.5', '--stop-timeout', '0'])).toMatchObject({ ok: true, options: { drainTimeoutSec: 2.5, stopTimeoutSec: 0 } });
  });
});
