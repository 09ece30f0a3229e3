#!/usr/bin/env node
// vipfarm-agent: wiring only. See cli.ts for the flags, agent.ts for the loop.
import { parseAgentArgs, USAGE } from './cli.js';
import { preflightFile, runFileMode } from './run-file-mode.js';

async function main(): Promise<number> {
  const r = parseAgentArgs(process.argv.slice(2), process.env);
  if (!r.ok) {
    process.stderr.write(`vipfarm-agent: ${r.error}\n`);
    return 2;
  }
  const o = r.options;
  switch (o.mode) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'check': {
      const { cfg: c } = preflightFile(o.config!);
      process.stdout.write(`${o.config}: valid (farm ${c.farm.name}, node ${c.node.name}, ${c.farm.bucketCount} buckets)\n`);
      return 0;
    }
    case 'file':
      await runFileMode(o);
      return -1; // keeps running until a signal
    case 'kubernetes': {
      const { runKubernetesMode } = await import('./run-kubernetes-mode.js');
      await runKubernetesMode(o);
      return -1;
    }
  }
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: Error & { exitCode?: number }) => {
    process.stderr.write(`vipfarm-agent: ${err.message}\n`);
    process.exit(err.exitCode ?? 1);
  },
);
