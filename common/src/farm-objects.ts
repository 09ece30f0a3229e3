// The contract between the operator and the agents: the names and labels of the objects
// the operator makes for a farm, by which the agents find their Secret and their peers.

export const FIELD_MANAGER = 'vipfarm-operator';
export const AGENT_APP = 'vipfarm-agent';
export const FARM_LABEL = 'vipfarm.io/farm';
export const HEARTBEAT_KEY_FIELD = 'key';

/** Names of the objects made for farm `farm`; the agent finds its Secret by the same rule. */
export function objectNames(farm: string): {
  serviceAccount: string;
  role: string;
  roleBinding: string;
  daemonSet: string;
  secret: string;
} {
  const agent = `${farm}-agent`;
  return { serviceAccount: agent, role: agent, roleBinding: agent, daemonSet: agent, secret: `${farm}-heartbeat` };
}

/** Labels that select a farm's agent pods (also what agents use to find their peers). */
export function agentSelector(farm: string): Record<string, string> {
  return { 'app.kubernetes.io/name': AGENT_APP, [FARM_LABEL]: farm };
}

export function farmLabels(farm: string): Record<string, string> {
  return {
    ...agentSelector(farm),
    'app.kubernetes.io/instance': farm,
    'app.kubernetes.io/component': 'agent',
    'app.kubernetes.io/managed-by': FIELD_MANAGER,
  };
}

export function labelSelectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
