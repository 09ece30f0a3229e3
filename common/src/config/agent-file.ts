// The standalone agent file (YAML mode): the farm's spec fields at the top level, plus
// who this node is, its peers and the heartbeat key file.
import yaml from 'js-yaml';
import type { FarmConfig, PeerSpec } from '../types.js';
import { Collector, integer, isRecord, join, list, object, show, string, syntax, type Result } from './collector.js';
import { effectiveWeight } from './defaults.js';
import { farmInto } from './farm-spec.js';
import { LIMITS, canonicalIP, ipFamilyOf, nodeNameProblem, unicastIPProblem } from './syntax.js';

export interface AgentConfig {
  farm: FarmConfig;
  /** weight is the effective one: node.weight ?? farm.weights[node.name] ?? farm.defaultWeight */
  node: { name: string; address: string; weight: number };
  peers: PeerSpec[];
  keyFile: string;
}

const AGENT_FILE_FIELDS = ['name', 'node', 'peers', 'keyFile', 'metricsPort'] as const;

function parsePeers(c: Collector, v: unknown, self: { name?: string; address?: string }): PeerSpec[] | undefined {
  const items = list(c, v, 'peers', false);
  if (!items) return undefined;
  const out: PeerSpec[] = [];
  const names = new Map<string, number>();
  const addrs = new Map<string, number>();
  const before = c.errors.length;
  items.forEach((item, i) => {
    const p = join('peers', i);
    const o = object(c, item, p, ['name', 'address', 'otherAddresses']);
    if (!o) return;
    const name = string(c, o.name, join(p, 'name'));
    if (name !== undefined) {
      const problem = nodeNameProblem(name);
      if (problem) c.err(join(p, 'name'), problem);
    }
    const address = nodeAddress(c, o.address, join(p, 'address'), self.address);
    if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined) c.err(join(p, 'name'), `duplicate peer name ${show(name)} (same as peers[${first}])`);
      else names.set(name, i);
    }
    if (address !== undefined) {
      const first = addrs.get(address);
      if (first !== undefined) c.err(join(p, 'address'), `duplicate peer address ${address} (same as peers[${first}])`);
      else addrs.set(address, i);
    }
    if (name !== undefined && address !== undefined && self.name !== undefined && self.address !== undefined) {
      if (name === self.name && address !== self.address) {
        c.err(join(p, 'address'), `this is the node itself (${name}) but node.address is ${self.address}, got ${address}`);
      } else if (name !== self.name && address === self.address) {
        c.err(join(p, 'address'), `${address} is node.address (${self.name}), but this peer is named ${show(name)}`);
      }
    }
    const other = otherAddresses(c, o.otherAddresses, join(p, 'otherAddresses'), address);
    if (name !== undefined && address !== undefined) out.push({ name, address, ...(other && other.length > 0 ? { otherAddresses: other } : {}) });
  });
  return c.errors.length === before ? out : undefined;
}

/**
 * A node's unicast address of either family, in its canonical text (compared with others);
 * a peer's of the family of `self` (one heartbeat socket per node: a farm talks one family).
 */
function nodeAddress(c: Collector, v: unknown, path: string, self?: string): string | undefined {
  const s = syntax(c, v, path, unicastIPProblem);
  if (s === undefined) return undefined;
  if (self !== undefined && ipFamilyOf(s) !== ipFamilyOf(self)) {
    return c.err(path, `must be of node.address's family (${ipFamilyOf(self)}), got ${s}`);
  }
  return canonicalIP(s);
}

/** A dual-stack peer's address of the other family (heartbeats use `address`): Directed
 *  mode's second chance sends that family's packets of moved connections there. */
function otherAddresses(c: Collector, v: unknown, path: string, address?: string): string[] | undefined {
  if (v === undefined) return [];
  const items = list(c, v, path, true);
  if (!items) return undefined;
  if (items.length > 1) return c.err(path, `must hold at most one address (of the family that address is not), got ${items.length}`);
  const before = c.errors.length;
  const out = items.map((item, i) => nodeAddress(c, item, join(path, i))).filter((a): a is string => a !== undefined);
  if (address !== undefined && out[0] !== undefined && ipFamilyOf(out[0]) === ipFamilyOf(address)) {
    c.err(join(path, 0), `must be of the other family than address (${ipFamilyOf(address)}), got ${out[0]}`);
  }
  return c.errors.length === before ? out : undefined;
}

function parseNode(c: Collector, v: unknown): { name?: string; address?: string; weight?: number } | undefined {
  if (v === undefined) return c.err('node', 'is required ({name, address, weight?})');
  const o = object(c, v, 'node', ['name', 'address', 'weight']);
  if (!o) return undefined;
  return {
    name: syntax(c, o.name, 'node.name', nodeNameProblem),
    address: nodeAddress(c, o.address, 'node.address'),
    weight: o.weight === undefined ? undefined : integer(c, o.weight, 'node.weight', 0, LIMITS.weightMax),
  };
}

/**
 * The standalone agent file: FarmSpec fields at the top level plus name, node, peers,
 * keyFile and metricsPort (which overrides agent.metricsPort). YAML syntax errors become
 * a FieldError on "(yaml)" carrying the line and column.
 */
export function parseAgentFile(yamlText: string): Result<AgentConfig> {
  const c = new Collector();
  let doc: unknown;
  try {
    doc = yaml.load(yamlText, { schema: yaml.CORE_SCHEMA });
  } catch (e) {
    const err = e as { mark?: { line: number; column: number }; reason?: string; message?: string };
    const where = err.mark ? `line ${err.mark.line + 1}, column ${err.mark.column + 1}: ` : '';
    c.err('(yaml)', `${where}${err.reason ?? err.message ?? String(e)}`);
    return { ok: false, errors: c.errors, warnings: c.warnings };
  }
  if (!isRecord(doc)) {
    c.err('(top level)', `must be a YAML mapping, got ${show(doc)}`);
    return { ok: false, errors: c.errors, warnings: c.warnings };
  }
  if (doc.name === undefined) c.err('name', 'is required (the farm name)');
  else if (typeof doc.name !== 'string') c.err('name', `must be a string, got ${show(doc.name)}`);
  // An absent or non-string name is reported above; validate the rest under a placeholder.
  const farm = farmInto(c, doc, {
    name: typeof doc.name === 'string' ? doc.name : 'unnamed',
    path: '',
    nameField: 'name',
    extra: AGENT_FILE_FIELDS,
  });
  const node = parseNode(c, doc.node);
  const peers = doc.peers === undefined ? [] : parsePeers(c, doc.peers, node ?? {});
  const keyFile = doc.keyFile === undefined ? c.err('keyFile', 'is required (path of the heartbeat key file)') : string(c, doc.keyFile, 'keyFile');
  const metricsPort = doc.metricsPort === undefined ? undefined : integer(c, doc.metricsPort, 'metricsPort', 1, LIMITS.portMax);

  if (c.errors.length > 0 || !farm || !node || !peers || keyFile === undefined) {
    return { ok: false, errors: c.errors, warnings: c.warnings };
  }
  const nodeName = node.name!;
  return {
    ok: true,
    warnings: c.warnings,
    value: {
      farm: metricsPort === undefined ? farm : { ...farm, metricsPort },
      node: { name: nodeName, address: node.address!, weight: effectiveWeight(farm, nodeName, node.weight) },
      peers,
      keyFile,
    },
  };
}
