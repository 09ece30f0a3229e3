// The farm configuration: value syntaxes, defaults, the FarmCluster spec parser and the
// agent's YAML file parser. Import from here unless you need one module's internals.
export { formatErrors, show, type Result } from './collector.js';
export { DEFAULTS, defaultHashSeed, defaultVirtualMAC, effectiveWeight } from './defaults.js';
export { parseFarmSpec, parseServiceAddresses } from './farm-spec.js';
export { parseAgentFile, type AgentConfig } from './agent-file.js';
export * from './syntax.js';
