// The generated CRD types are current, the CRD documents every field for kubectl explain,
// and the shared parser knows exactly the spec's fields.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { FARM_SPEC_FIELDS } from './config/farm-spec.js';

const root = process.cwd();

interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
}

function crdSchema(): Schema {
  const crd = yaml.load(readFileSync(join(root, 'crds/farmcluster.yaml'), 'utf8')) as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
  };
  return crd.spec.versions[0].schema.openAPIV3Schema;
}

function undocumented(s: Schema, path: string, acc: string[]): string[] {
  for (const [k, p] of Object.entries(s.properties ?? {})) {
    const here = `${path}.${k}`;
    if (k !== 'metadata' && !p.description) acc.push(here);
    undocumented(p, here, acc);
    if (p.items) undocumented(p.items, `${here}[]`, acc);
  }
  return acc;
}

describe('FarmCluster CRD and its generated types', () => {
  test('regenerating the types from the YAML gives the committed file', () => {
    const fresh = execFileSync('node', [join(root, 'scripts/gen-crd-types.mjs'), '--stdout'], { encoding: 'utf8' });
    const committed = readFileSync(join(root, 'common/src/farmcluster-types.ts'), 'utf8');
    expect(committed.split('\n')[0]).toMatch(/generated .* do not edit/);
    expect(fresh).toBe(committed);
  });

  test('the parser accepts exactly the spec fields of the CRD', () => {
    const spec = crdSchema().properties!.spec;
    expect([...FARM_SPEC_FIELDS].sort()).toEqual(Object.keys(spec.properties!).sort());
  });

  test('every field has a description for kubectl explain', () => {
    expect(undocumented(crdSchema(), '', [])).toEqual([]);
  });

  test('the undocumented-field check finds a missing description', () => {
    const s: Schema = { type: 'object', properties: { a: { type: 'string', description: 'x' }, b: { type: 'object', properties: { c: { type: 'string' } } } } };
    expect(undocumented(s, '', [])).toEqual(['.b', '.b.c']);
  });
});

describe('CRD defaults agree with the shared parser', () => {
  // The API server applies the CRD's defaults, the agent's YAML mode the parser's: a farm
  // must behave the same both ways.
  test.each([
    ['bucketCount', 'bucketCount'],
    ['heartbeat.intervalMs', 'heartbeat.properties.intervalMs'],
    ['heartbeat.port', 'heartbeat.properties.port'],
    ['defaultWeight', 'defaultWeight'],
    ['gratuitousARPIntervalMs', 'gratuitousARPIntervalMs'],
    ['agent.metricsPort', 'agent.properties.metricsPort'],
    ['rules[].protocol', 'rules.items.properties.protocol'],
    ['rules[].affinity', 'rules.items.properties.affinity'],
  ])('%s', async (field, schemaPath) => {
    const { parseFarmSpec } = await import('./config/index.js');
    let s: any = crdSchema().properties!.spec.properties;
    for (const k of schemaPath.split('.')) s = s[k];
    const parsed = parseFarmSpec({ virtualIPs: ['10.99.0.100'], interface: 'eth0', rules: [{ port: 80 }] }, { name: 'web' });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const fromParser: Record<string, unknown> = {
      bucketCount: parsed.value.bucketCount,
      'heartbeat.intervalMs': parsed.value.heartbeat.intervalMs,
      'heartbeat.port': parsed.value.heartbeat.port,
      defaultWeight: parsed.value.defaultWeight,
      gratuitousARPIntervalMs: parsed.value.gratuitousARPIntervalMs,
      'agent.metricsPort': parsed.value.metricsPort,
      'rules[].protocol': parsed.value.rules[0].protocol,
      'rules[].affinity': parsed.value.rules[0].affinity,
    };
    expect(s.default).toBeDefined();
    expect(fromParser[field]).toBe(s.default);
  });

  test('the CEL threshold rule assumes the default interval', async () => {
    const { DEFAULTS } = await import('./config/index.js');
    const hb: any = crdSchema().properties!.spec.properties!.heartbeat;
    expect(hb['x-kubernetes-validations'][0].rule).toContain(`: ${DEFAULTS.intervalMs})`);
  });

  test('examples/farm.yaml passes the parser', () => {
    return import('./config/index.js').then(({ parseFarmSpec, formatErrors }) => {
      const fc = yaml.load(readFileSync(join(root, 'examples/farm.yaml'), 'utf8')) as { metadata: { name: string }; spec: unknown };
      const r = parseFarmSpec(fc.spec, { name: fc.metadata.name });
      expect(r.ok ? '' : formatErrors(r.errors)).toBe('');
    });
  });
});
