// `helm install` of the repository's chart into a real-node cluster, running the project's
// image (already imported into the nodes): the way users install it. Shared by the real-node
// end-to-end tests and the demo's --kubernetes mode.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { findBinDir, repoRoot } from './binaries.js';
import type { ControlPlane } from './controlplane.js';

const execFileP = promisify(execFile);

export interface ChartInstall {
  release: string;
  namespace: string;
  /** image reference, e.g. localhost/vipfarm:src-1234 (pullPolicy Never: imported, not pulled) */
  image: string;
  /** more chart values, merged over the image's */
  values?: Record<string, unknown>;
}

/** Installs the chart and waits for the operator; helm's output (NOTES.txt) out. On failure
 *  the error carries the pods and the operator's log. */
export async function installChart(cp: ControlPlane, o: ChartInstall): Promise<string> {
  const [repository, tag] = o.image.split(/:(?=[^:]+$)/);
  const dir = mkdtempSync(path.join(tmpdir(), 'vipfarm-chart-'));
  try {
    const values = { image: { repository, tag, pullPolicy: 'Never' }, operator: { replicas: 1 }, ...o.values };
    writeFileSync(path.join(dir, 'values.yaml'), yaml.dump(values));
    const r = await execFileP(path.join(findBinDir(), 'helm'), ['install', o.release, path.join(repoRoot(), 'helm/vipfarm'), '-n', o.namespace, '--create-namespace',
      '-f', path.join(dir, 'values.yaml'), '--wait', '--timeout', '180s', '--kubeconfig', cp.kubeconfigPath], { encoding: 'utf8' })
      .catch(async (err) => {
        const pods = await cp.kubectl(['get', 'pods', '-A', '-o', 'wide']).catch(() => '');
        const logs = await cp.kubectl(['logs', '-n', o.namespace, '-l', 'app.kubernetes.io/name=vipfarm', '--tail=30']).catch((e: Error) => e.message);
        throw new Error(`helm install: ${(err as { stderr?: string }).stderr}\n${pods}\n${logs}`, { cause: err });
      });
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
