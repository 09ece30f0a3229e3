import type * as k8s from '@kubernetes/client-node';
import { containerArgv, expandVars, fieldRefValue, mountMap, referencedObjects, resolveEnv, volumeFiles, type PodContext } from '../../lab/cluster/podenv.js';

const ctx: PodContext = {
  nodeName: 'n1',
  hostIP: '10.99.0.11',
  podIP: '10.99.0.11',
  secrets: { hb: { key: 's3cret', other: 'x' } },
  configMaps: { cfg: { 'farm.yaml': 'vip: 1', mode: 'fast' } },
};

function pod(spec: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod {
  return {
    metadata: { name: 'agent-abc', namespace: 'vf', uid: 'u-1', labels: { app: 'vipfarm' }, annotations: { 'a/b': 'c' } },
    spec: { containers: [{ name: 'agent', command: ['node'] }], ...spec },
  };
}

describe('expandVars', () => {
  const env = { A: 'x', B_1: 'y' };
  test.each([
    ['$(A)', 'x'],
    ['pre-$(A)-$(B_1)', 'pre-x-y'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['$$', '$'],
    ['cost $5', 'cost $5'],
    ['$(A', '$(A'],
    ['', ''],
  ])('%s -> %s', (input, out) => expect(expandVars(input, env)).toBe(out));
});

describe('fieldRefValue', () => {
  test.each([
    ['metadata.name', 'agent-abc'],
    ['metadata.namespace', 'vf'],
    ['metadata.uid', 'u-1'],
    ['spec.nodeName', 'n1'],
    ['spec.serviceAccountName', 'default'],
    ['status.hostIP', '10.99.0.11'],
    ['status.podIP', '10.99.0.11'],
    ["metadata.labels['app']", 'vipfarm'],
    ["metadata.annotations['a/b']", 'c'],
    ["metadata.labels['none']", ''],
  ])('%s', (path, value) => expect(fieldRefValue(pod(), path, ctx)).toBe(value));

  test('unsupported paths are errors, not empty strings', () => {
    expect(() => fieldRefValue(pod(), 'status.phase', ctx)).toThrow(/not supported/);
  });
});

describe('resolveEnv', () => {
  const base = { KUBERNETES_SERVICE_HOST: '127.0.0.1', PATH: '/bin' };

  test('values, downward API, secret and configMap keys, in order with expansion', () => {
    const c: k8s.V1Container = {
      name: 'agent',
      env: [
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
        { name: 'KEY', valueFrom: { secretKeyRef: { name: 'hb', key: 'key' } } },
        { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'mode' } } },
        { name: 'ID', value: '$(NODE)/$(POD)' },
        { name: 'LATER', value: '$(AFTER)' },
        { name: 'AFTER', value: 'z' },
      ],
    };
    expect(resolveEnv(pod(), c, ctx, base)).toEqual({
      ...base,
      NODE: 'n1',
      POD: 'agent-abc',
      NS: 'vf',
      HOST_IP: '10.99.0.11',
      KEY: 's3cret',
      MODE: 'fast',
      ID: 'n1/agent-abc',
      LATER: '$(AFTER)',
      AFTER: 'z',
    });
  });

  test('envFrom comes first, env overrides it, prefix applies', () => {
    const c: k8s.V1Container = {
      name: 'a',
      envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CFG_' }, { secretRef: { name: 'hb' } }],
      env: [{ name: 'key', value: 'overridden' }],
    };
    const env = resolveEnv(pod(), c, ctx, {});
    expect(env).toEqual({ 'CFG_farm.yaml': 'vip: 1', CFG_mode: 'fast', key: 'overridden', other: 'x' });
  });

  test('missing references fail unless optional', () => {
    const missingSecret: k8s.V1Container = { name: 'a', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }] };
    expect(() => resolveEnv(pod(), missingSecret, ctx, {})).toThrow(/secret "nope" not found/);
    const missingKey: k8s.V1Container = { name: 'a', env: [{ name: 'K', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'zz' } } }] };
    expect(() => resolveEnv(pod(), missingKey, ctx, {})).toThrow(/key "zz" not found in configMap "cfg"/);
    const optional: k8s.V1Container = { name: 'a', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 'nope', key: 'k', optional: true } } }] };
    expect(resolveEnv(pod(), optional, ctx, { X: '1' })).toEqual({ X: '1' });
    const missingFrom: k8s.V1Container = { name: 'a', envFrom: [{ secretRef: { name: 'nope' } }] };
    expect(() => resolveEnv(pod(), missingFrom, ctx, {})).toThrow(/secret "nope"/);
  });

  test('resourceFieldRef is refused', () => {
    const c: k8s.V1Container = { name: 'a', env: [{ name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } }] };
    expect(() => resolveEnv(pod(), c, ctx, {})).toThrow(/only value, fieldRef/);
  });
});

describe('containerArgv', () => {
  test('command + args, expanded', () => {
    expect(containerArgv({ name: 'a', command: ['sh', '-c'], args: ['echo $(NODE) $$HOME'] }, { NODE: 'n2' })).toEqual(['sh', '-c', 'echo n2 $HOME']);
  });
  test('no command: refused, the test kubelet runs no images', () => {
    expect(() => containerArgv({ name: 'a', image: 'x', args: ['y'] }, {})).toThrow(/no command/);
  });
});

describe('referencedObjects', () => {
  test('collects env, envFrom and volume references once each', () => {
    const p = pod({
      containers: [
        { name: 'a', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 'hb', key: 'key' } } }], envFrom: [{ configMapRef: { name: 'cfg' } }] },
        { name: 'b', envFrom: [{ secretRef: { name: 'other' } }] },
      ],
      volumes: [{ name: 'v', secret: { secretName: 'hb' } }, { name: 'w', configMap: { name: 'cfg2' } }, { name: 'e', emptyDir: {} }],
    });
    expect(referencedObjects(p)).toEqual({ secrets: ['hb', 'other'], configMaps: ['cfg', 'cfg2'] });
  });
});

describe('volumeFiles and mountMap', () => {
  test('all keys, selected items, optional missing, other kinds skipped', () => {
    const p = pod({
      volumes: [
        { name: 'all', secret: { secretName: 'hb' } },
        { name: 'some', configMap: { name: 'cfg', items: [{ key: 'farm.yaml', path: 'conf/farm.yaml' }] } },
        { name: 'opt', configMap: { name: 'nope', optional: true } },
        { name: 'tmp', emptyDir: {} },
      ],
    });
    expect(volumeFiles(p, ctx)).toEqual({
      all: { key: 's3cret', other: 'x' },
      some: { 'conf/farm.yaml': 'vip: 1' },
      opt: {},
    });
  });
  test('missing required source and escaping paths fail', () => {
    expect(() => volumeFiles(pod({ volumes: [{ name: 'v', secret: { secretName: 'nope' } }] }), ctx)).toThrow(/secret "nope" not found/);
    const escape = pod({ volumes: [{ name: 'v', configMap: { name: 'cfg', items: [{ key: 'mode', path: '../x' }] } }] });
    expect(() => volumeFiles(escape, ctx)).toThrow(/escapes/);
  });
  test('mount paths map to host directories, subPath appended, unknown volumes skipped', () => {
    const c: k8s.V1Container = {
      name: 'a',
      volumeMounts: [
        { name: 'all', mountPath: '/etc/vipfarm/secret' },
        { name: 'some', mountPath: '/etc/vipfarm/farm.yaml', subPath: 'conf/farm.yaml' },
        { name: 'tmp', mountPath: '/tmp/x' },
      ],
    };
    expect(mountMap(c, { all: '/p/volumes/all', some: '/p/volumes/some' })).toEqual({
      '/etc/vipfarm/secret': '/p/volumes/all',
      '/etc/vipfarm/farm.yaml': '/p/volumes/some/conf/farm.yaml',
    });
  });
});
