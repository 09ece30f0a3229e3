// `npm run bench -- <name>`: runs bench/<name>.ts, whose run() writes its section of
// docs/benchmarks.md and returns the figures; the last stdout line is them as JSON.
const name = process.argv[2];
if (name === undefined || !/^[a-z][a-z0-9-]*$/.test(name)) {
  process.stderr.write('usage: node dist/bench/main.js <dataplane|failover|assignment|services|...>\n');
  process.exit(2);
}

interface Bench {
  run(): Promise<Record<string, unknown>>;
}

let bench: Bench;
try {
  bench = (await import(`./${name}.js`)) as Bench;
} catch (err) {
  process.stderr.write(`bench ${name}: cannot load dist/bench/${name}.js: ${String(err)}\n`);
  process.exit(2);
}
const result = await bench.run();
process.stdout.write(JSON.stringify(result) + '\n');
// helper processes and timers of a bench must not keep us alive
process.exit(0);
