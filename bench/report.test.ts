import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replaceSection, writeSection } from './report.js';

describe('replaceSection', () => {
  it('creates the document and the section when missing', () => {
    const doc = replaceSection('', 'dataplane', 'table A');
    expect(doc).toMatch(/^# Benchmarks/);
    expect(doc).toContain('<!-- bench:dataplane:start -->\ntable A\n<!-- bench:dataplane:end -->');
  });
  it('replaces only its own section and keeps the others byte for byte', () => {
    let doc = replaceSection('', 'dataplane', 'old');
    doc = replaceSection(doc, 'failover', 'theirs\n\nwith lines');
    const next = replaceSection(doc, 'dataplane', 'new');
    expect(next).not.toContain('old');
    expect(next).toContain('<!-- bench:dataplane:start -->\nnew\n<!-- bench:dataplane:end -->');
    expect(next).toContain('<!-- bench:failover:start -->\ntheirs\n\nwith lines\n<!-- bench:failover:end -->');
    expect(next.indexOf('bench:dataplane')).toBeLessThan(next.indexOf('bench:failover'));
  });
  it('is idempotent', () => {
    const once = replaceSection('# Mine\n\nintro\n', 'x', 'body');
    expect(replaceSection(once, 'x', 'body')).toBe(once);
    expect(once.startsWith('# Mine\n\nintro\n')).toBe(true);
  });
});

describe('writeSection', () => {
  it('writes the section with the machine line into the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vf-report-'));
    try {
      const path = join(dir, 'b.md');
      writeFileSync(path, '# Benchmarks\n');
      writeSection('dataplane', '| a |\n|---|', path);
      const text = readFileSync(path, 'utf8');
      expect(text).toMatch(/<!-- bench:dataplane:start -->\n_Run .* CPUs .*Linux .*\n\n\| a \|/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
