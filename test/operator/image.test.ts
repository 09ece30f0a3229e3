// Builds the image the way users do (scripts/build-image.sh, with buildah and a local Debian
// base since no registry is reachable here; through projectImage(), so the real-node tests of
// the same run use this very build and a run with unchanged image inputs builds nothing), renders the Helm chart with the --set lines the
// script printed, and runs both programs from the image reference the chart renders: the
// native module must load with the runtime stage's libraries. Needs buildah and debootstrap
// (Debian packages); without them the test is reported as skipped with the reason, since
// there is nothing else it could check.
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { findBinDir } from '../../lab/cluster/binaries.js';
import { projectImage } from '../../lab/cluster/project-image.js';
import { root } from './helpers.js';

const execFileP = promisify(execFile);
const have = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const tools = have('buildah') && have('debootstrap');
let flags: string[] = [];
let ctr: string | undefined;

const buildah = async (args: string[]): Promise<string> => (await execFileP('buildah', [...flags, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 })).stdout;

afterAll(async () => {
  if (!tools || flags.length === 0) return;
  if (ctr) await buildah(['rm', ctr]).catch(() => {});
}, 60_000);

(tools ? describe : describe.skip)(`container image (buildah${tools ? '' : ': install buildah and debootstrap to run'})`, () => {
  test('scripts/build-image.sh builds it, the chart renders that image, and it runs the agent and the operator', async () => {
    const image = await projectImage();
    const kv = image.script;
    const tag = image.ref;
    expect(kv.image).toBe(tag);
    expect(kv.builder).toBe('buildah');
    flags = kv.buildah_flags!.split(' ');
    // The chart with the script's --set lines: operator and agents use the image just built.
    const rendered = execFileSync(path.join(findBinDir(), 'helm'), ['template', 'vf', path.join(root, 'helm/vipfarm'), '--kube-version', '1.36.0', ...kv.helm_set!.split(' ')], { encoding: 'utf8' });
    const deployment = (yaml.loadAll(rendered) as { kind?: string; spec?: any }[]).find((o) => o?.kind === 'Deployment')!;
    const container = deployment.spec.template.spec.containers[0];
    expect(container.image).toBe(tag);
    expect(container.command).toContain(`--agent-image=${tag}`);
    ctr = (await buildah(['from', '-q', container.image])).trim();
    const run = (argv: string[]): Promise<string> => buildah(['run', '--isolation', 'chroot', ctr!, '--', ...argv]);
    expect(await run(['node', '/app/dist/agent/src/main.js', '--help'])).toContain('vipfarm-agent --kubernetes --farm NAME');
    expect(await run(['node', '/app/dist/operator/src/main.js', '--help'])).toContain('vipfarm-operator');
    // The default command is the operator's --help.
    const cmd = (await buildah(['inspect', '--format', '{{.OCIv1.Config.Cmd}}', tag])).trim();
    expect(cmd).toBe('[node /app/dist/operator/src/main.js --help]');
    const loaded = await run(['node', '--input-type=module', '-e', "const { native } = await import('/app/dist/native/src/load.js'); console.log(Object.keys(native()).join(','))"]);
    expect(loaded).toContain('nftApply');
    // Only what the runtime needs: no compilers, no -dev headers, no TypeScript sources.
    const shell = await run(['sh', '-c', 'command -v g++ gcc make || true; ls /usr/include/libnftnl 2>/dev/null || true; ls /app/agent /app/operator 2>/dev/null || true; test -d /app/node_modules/typescript && echo typescript || true']);
    expect(shell.trim()).toBe('');
  }, 1_800_000);
});
