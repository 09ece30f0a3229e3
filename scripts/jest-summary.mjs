// Prints jest's --json results as the closing line CI reads: "N passed, N failed".
//   node scripts/jest-summary.mjs JEST.json [--lint ESLINT.json]
// With --lint, eslint's JSON findings are printed first and every lint error counts as a
// failed check (a lint file that is missing, unreadable or says the linter crashed is one
// failure, so a broken lint setup cannot pass as "no findings").
import { readFileSync } from 'node:fs';
import path from 'node:path';

const [file, ...rest] = process.argv.slice(2);
const lintAt = rest.indexOf('--lint');
const lintFile = lintAt >= 0 ? rest[lintAt + 1] : undefined;

function lintFailures() {
  if (lintFile === undefined) return { failed: 0, note: '' };
  let text;
  try {
    text = readFileSync(lintFile, 'utf8').trim();
  } catch (err) {
    console.error(`jest-summary: cannot read lint results ${lintFile}: ${err.message}`);
    return { failed: 1, note: ', lint did not run' };
  }
  if (text === 'skipped') return { failed: 0, note: ', lint skipped' };
  let files;
  try {
    files = JSON.parse(text);
  } catch (err) {
    console.error(`jest-summary: lint results ${lintFile} are not JSON: ${err.message}`);
    return { failed: 1, note: ', lint did not run' };
  }
  if (!Array.isArray(files)) {
    console.error('jest-summary: eslint crashed (see its message above)');
    return { failed: 1, note: ', lint crashed' };
  }
  let errors = 0;
  for (const f of files) {
    for (const m of f.messages) {
      const where = `${path.relative(process.cwd(), f.filePath)}:${m.line ?? 0}:${m.column ?? 0}`;
      const level = m.severity === 2 ? 'error' : 'warning';
      console.log(`lint ${level} ${where} ${m.message} (${m.ruleId ?? 'eslint'})`);
      if (m.severity === 2) errors++;
    }
  }
  return { failed: errors, note: errors ? `, of which ${errors} lint` : '' };
}

const lint = lintFailures();
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`0 passed, ${1 + lint.failed} failed${lint.note}`);
  console.error(`jest-summary: cannot read ${file}: ${err.message}`);
  process.exit(1);
}
// A suite that fails to load has no test results but must count as a failure.
const brokenSuites = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
const failed = r.numFailedTests + brokenSuites + lint.failed;
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : '') + lint.note);
process.exit(failed > 0 ? 1 : 0);
