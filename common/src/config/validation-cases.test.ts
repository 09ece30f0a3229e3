// The shared table against the parser: valid rows parse, invalid rows are refused with an
// error on the row's field. (The same rows run against CEL and the native checks.)
import { formatErrors } from './collector.js';
import { parseFarmSpec } from './farm-spec.js';
import { VALIDATION_CASES, caseName, caseSpec } from './validation-cases.js';

const valid = VALIDATION_CASES.filter((c) => !c.refused);
const refused = VALIDATION_CASES.filter((c) => c.refused);

describe('shared validation table: the parser', () => {
  test('the table has both kinds and unique labels', () => {
    expect(valid.length).toBeGreaterThan(10);
    expect(refused.length).toBeGreaterThan(10);
    expect(new Set(VALIDATION_CASES.map((c) => c.label)).size).toBe(VALIDATION_CASES.length);
  });

  test.each(valid.map((c) => [c.label, c] as const))('%s is accepted', (_l, c) => {
    const r = parseFarmSpec(caseSpec(c), { name: caseName(c) });
    expect(r.ok ? '' : formatErrors(r.errors)).toBe('');
  });

  test.each(refused.map((c) => [c.label, c] as const))('%s is refused on its field', (_l, c) => {
    const r = parseFarmSpec(caseSpec(c), { name: caseName(c) });
    expect(r.ok).toBe(false);
    const fields = r.ok ? [] : r.errors.map((e) => e.field);
    expect(fields).toContain(c.refused!.field);
  });
});
