import { exitPlan, type ExitFacts } from './exit-plan.js';

const daemonDefaults = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
];
const rollout = (over: Partial<ExitFacts> = {}): ExitFacts => ({
  farm: { deleting: false },
  daemonSet: { deleting: false, generation: 3, template: { nodeSelector: { role: 'lb' }, tolerations: [{ key: 'lb', operator: 'Exists' }] } },
  pod: { templateGeneration: 2, placement: { nodeSelector: { role: 'lb' }, tolerations: [{ key: 'lb', operator: 'Exists' }, ...daemonDefaults] } },
  ...over,
});

describe('exitPlan', () => {
  test('a rollout that keeps the placement keeps the kernel state for the next agent', () => {
    const p = exitPlan(rollout());
    expect(p.keepKernelState).toBe(true);
    expect(p.reason).toMatch(/rollout/);
  });

  test('without a nodeSelector or tolerations on either side it is still a rollout', () => {
    const p = exitPlan(rollout({
      daemonSet: { deleting: false, generation: 5, template: {} },
      pod: { templateGeneration: 4, placement: { tolerations: daemonDefaults } },
    }));
    expect(p.keepKernelState).toBe(true);
  });

  const leaves: [string, Partial<ExitFacts>, RegExp][] = [
    ['FarmCluster gone', { farm: undefined }, /FarmCluster is gone/],
    ['FarmCluster deleting', { farm: { deleting: true } }, /FarmCluster is being deleted/],
    ['DaemonSet unreadable', { daemonSet: undefined }, /DaemonSet is gone/],
    ['DaemonSet deleting', { daemonSet: { deleting: true, generation: 3, template: {} } }, /DaemonSet is being deleted/],
    ['pod unknown', { pod: undefined }, /pod is unknown/],
    ['pod without a template generation', { pod: { placement: {} } }, /pod is unknown/],
    // kubectl delete pod, eviction, node no longer selected by its labels, node shutdown
    ['same template', { pod: { templateGeneration: 3, placement: { nodeSelector: { role: 'lb' }, tolerations: [{ key: 'lb', operator: 'Exists' }] } } }, /not a rollout/],
    ['nodeSelector changed', { daemonSet: { deleting: false, generation: 3, template: { nodeSelector: { role: 'edge' }, tolerations: [{ key: 'lb', operator: 'Exists' }] } } }, /nodeSelector/],
    ['nodeSelector added', { daemonSet: { deleting: false, generation: 3, template: { nodeSelector: { role: 'lb', zone: 'a' }, tolerations: [{ key: 'lb', operator: 'Exists' }] } } }, /nodeSelector/],
    ['toleration removed', { daemonSet: { deleting: false, generation: 3, template: { nodeSelector: { role: 'lb' } } } }, /tolerations/],
    ['toleration changed', { daemonSet: { deleting: false, generation: 3, template: { nodeSelector: { role: 'lb' }, tolerations: [{ key: 'lb', operator: 'Equal', value: 'x' }] } } }, /tolerations/],
  ];
  test.each(leaves)('%s: everything is removed', (_name, over, reason) => {
    const p = exitPlan(rollout(over));
    expect(p.keepKernelState).toBe(false);
    expect(p.reason).toMatch(reason);
  });

  test('a daemon default toleration that the template names itself still counts', () => {
    const own = { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' };
    const withIt = rollout({ daemonSet: { deleting: false, generation: 3, template: { nodeSelector: { role: 'lb' }, tolerations: [{ key: 'lb', operator: 'Exists' }, own] } } });
    expect(exitPlan(withIt).keepKernelState).toBe(true);
  });
});
