// The Dockerfile's runtime stage names everything the programs need at run time: the
// shared libraries the native module links (checked against the built module with
// readelf and dpkg), the compiled directories, and only production npm dependencies.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { root } from './helpers.js';

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

function stages(text: string): Stage[] {
  const joined = text.replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const out: Stage[] = [];
  for (const l of joined) {
    const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l.trim());
    if (m) out.push({ from: m[1]!, name: m[2], lines: [] });
    else out.at(-1)?.lines.push(l.trim());
  }
  return out;
}

function aptPackages(stage: Stage): string[] {
  return stage.lines
    .filter((l) => l.startsWith('RUN') && l.includes('apt-get install'))
    .flatMap((l) => l.split('apt-get install')[1]!.split('&&')[0]!.trim().split(/\s+/))
    .filter((w) => !w.startsWith('-'));
}

function copies(stage: Stage): { from?: string; src: string; dest: string }[] {
  return stage.lines
    .filter((l) => l.startsWith('COPY'))
    .flatMap((l) => {
      const words = l.split(/\s+/).slice(1);
      const from = words.find((w) => w.startsWith('--from='))?.slice(7);
      const rest = words.filter((w) => !w.startsWith('--'));
      const dest = rest.at(-1)!;
      return rest.slice(0, -1).map((src) => ({ from, src, dest }));
    });
}

function jsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return jsFiles(p);
    return p.endsWith('.js') && !p.endsWith('.test.js') ? [p] : [];
  });
}

const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const all = stages(dockerfile);
const build = all.find((s) => s.name === 'build')!;
const runtime = all.at(-1)!;

describe('Dockerfile', () => {
  test('two stages: build with the -dev packages, a runtime without them', () => {
    expect(all.map((s) => s.name)).toEqual(['build', 'runtime']);
    expect(aptPackages(build)).toEqual(expect.arrayContaining(['libnftnl-dev', 'libmnl-dev', 'g++', 'make', 'python3']));
    expect(aptPackages(runtime).filter((p) => p.endsWith('-dev') || p === 'g++' || p === 'make')).toEqual([]);
  });

  test("the runtime installs the package of every library the native module links", () => {
    const module = path.join(root, 'native/build/Release/vipfarm_native.node');
    const needed = execFileSync('readelf', ['-d', module], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /\(NEEDED\).*\[(.+)\]/.exec(l)?.[1])
      .filter((x): x is string => !!x)
      // The base image has these: every node binary links them too.
      .filter((lib) => !/^(libc|libm|libstdc\+\+|libgcc_s|ld-linux.*)\.so/.test(lib));
    expect(needed.sort()).toEqual(['libmnl.so.0', 'libnftnl.so.11']);
    const packages = needed.map((lib) => {
      const owner = execFileSync('dpkg', ['-S', `*/${lib}`], { encoding: 'utf8' }).split('\n')[0]!;
      return owner.split(':')[0]!;
    });
    expect(aptPackages(runtime)).toEqual(expect.arrayContaining(packages));
  });

  test('the runtime copies the compiled programs, the native module where load.ts looks, and node_modules', () => {
    const dests = copies(runtime).filter((c) => c.from === 'build').map((c) => path.posix.join('/app', c.dest));
    for (const d of ['/app/dist/agent', '/app/dist/operator', '/app/dist/common', '/app/dist/native', '/app/node_modules', '/app/package.json']) {
      expect(dests).toContain(d);
    }
    // native/src/load.ts resolves ../../../native/build/Release/vipfarm_native.node from dist/native/src/.
    const expected = path.posix.resolve('/app/dist/native/src', '../../../native/build/Release/vipfarm_native.node');
    expect(dests).toContain(expected);
    expect(readFileSync(path.join(root, 'native/src/load.ts'), 'utf8')).toContain("'../../../native/build/Release/vipfarm_native.node'");
    // Every source directory the build compiles is copied into the build stage.
    const built = copies(build).map((c) => c.src.replace(/\/$/, ''));
    for (const d of ['common', 'native', 'agent', 'operator', 'package.json', 'package-lock.json', 'tsconfig.json']) expect(built).toContain(d);
  });

  test('the programs import only production dependencies (npm prune --omit=dev keeps them)', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    const prod = new Set(Object.keys(pkg.dependencies));
    const files = ['agent', 'operator', 'common', 'native'].flatMap((d) => jsFiles(path.join(root, 'dist', d, 'src')));
    expect(files.length).toBeGreaterThan(10);
    const bare = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        bare.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect([...bare].filter((b) => !prod.has(b))).toEqual([]);
    expect([...bare]).toContain('@kubernetes/client-node');
  });

  test('the runtime stage copies no tests or sources', () => {
    const srcs = copies(runtime).map((c) => c.src);
    expect(srcs.filter((s) => /test|bench|\.ts$/.test(s))).toEqual([]);
  });
});
