// Binds the VIPs the way farm mode needs: /32 or /128 on lo (every node accepts the VIP)
// plus sysctls so the kernel itself never answers ARP for it. IPv6 needs none: Linux
// answers a Neighbour Solicitation only for an address on the interface it arrived on
// (ndisc_recv_ns looks the target up strictly on that device), never for one on lo, and
// never uses an address of lo as the source of its own solicitations on eth0; only a
// proxy_ndp entry for the VIP would make it answer (docs/architecture.md, test/netns/nd.test.ts). The original sysctl values
// are saved under /run/vipfarm, per farm and network namespace, so even a restarted
// agent restores what was there before it came. Several farms may share a namespace
// (and the "all" sysctls): the last one to unbind restores. A key is saved the first time
// the farm changes it and kept until restored: a farm moved to another interface saves
// that interface's originals too, and gives the old one back (releaseInterface).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from './load.js';
import { ipFamilyOf, IP_BITS } from '../../common/src/config/syntax.js';
import { checkFarmName, checkIface, checkVips, DataplaneInputError } from './validate.js';

/** a VIP is one host: /32 or /128 */
function hostPrefix(ip: string): number {
  return IP_BITS[ipFamilyOf(ip)];
}

/** [path under /proc/sys, value] for farm mode on iface */
export function sysctlPlan(iface: string): [string, string][] {
  const plan: [string, string][] = [];
  for (const dev of [iface, 'all']) {
    plan.push([`net/ipv4/conf/${dev}/arp_ignore`, '1']);   // reply only for addresses on the asking interface
    plan.push([`net/ipv4/conf/${dev}/arp_announce`, '2']); // never use the VIP as ARP source
    plan.push([`net/ipv4/conf/${dev}/rp_filter`, '0']);    // replies leave by another path than lo
  }
  return plan;
}

export interface SavedSysctls {
  /** the interface bound last (informational: `values` says what to restore) */
  iface: string;
  /** path under /proc/sys -> value before any vipfarm farm changed it */
  values: Record<string, string>;
}

/** Originals to save for a farm binding now. Another farm bound in this namespace may
 *  already have changed a key (the "all" ones, or the same interface): its saved value
 *  is the true original, the current one is ours. */
export function originalsFor(keys: string[], current: Record<string, string>, others: SavedSysctls[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) out[k] = others.find((o) => k in o.values)?.values[k] ?? current[k];
  return out;
}

/** Keys to put back when a farm unbinds: the ones no other bound farm still relies on. */
export function keysToRestore(mine: SavedSysctls, others: SavedSysctls[]): string[] {
  return Object.keys(mine.values).filter((k) => !others.some((o) => k in o.values));
}

function runDir(): string {
  return process.env.VIPFARM_RUN_DIR ?? '/run/vipfarm';
}

function netnsId(): number {
  // the network namespace's inode tells apart the nodes of a test bed on one host
  return statSync('/proc/self/ns/net').ino;
}

function statePath(farmName: string): string {
  return join(runDir(), `sysctl-${farmName}-netns${netnsId()}.json`);
}

function writeSaved(path: string, saved: SavedSysctls): void {
  mkdirSync(runDir(), { recursive: true, mode: 0o755 });
  writeFileSync(`${path}.tmp`, JSON.stringify(saved));
  renameSync(`${path}.tmp`, path);
}

function readSaved(path: string): SavedSysctls {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SavedSysctls;
  } catch (err) {
    throw new DataplaneInputError(`unreadable saved sysctls ${path}: ${String(err)}`);
  }
}

/** what the other farms bound in this network namespace saved */
function othersSaved(farmName: string): SavedSysctls[] {
  if (!existsSync(runDir())) return [];
  const suffix = `-netns${netnsId()}.json`;
  return readdirSync(runDir())
    .filter((f) => f.startsWith('sysctl-') && f.endsWith(suffix) && f !== `sysctl-${farmName}${suffix}`)
    .map((f) => readSaved(join(runDir(), f)));
}

/** Container runtimes mount /proc/sys read-only in unprivileged pods; the DaemonSet mounts
 *  the host's /proc/sys/net elsewhere and names it here (writes still land in the opener's,
 *  i.e. the host network's, namespace). */
function sysctlRoot(): string {
  const root = process.env.VIPFARM_SYSCTL_ROOT;
  // Without the mount (standalone, or a runtime without it) the usual path is tried, and a
  // read-only one fails with a clear EROFS.
  return root && existsSync(join(root, 'net')) ? root : '/proc/sys';
}

function readSysctl(key: string): string {
  return readFileSync(join(sysctlRoot(), key), 'utf8').trim();
}

function writeSysctl(key: string, value: string): void {
  writeFileSync(join(sysctlRoot(), key), value);
}

/** Read-only: throws ENODEV when the interface does not exist in this network namespace
 *  (what bindVips and the nft apply would refuse; --check-config asks the same). */
export function checkIfaceExists(op: string, iface: string): void {
  if (!existsSync(join(sysctlRoot(), 'net/ipv4/conf', iface))) {
    const err = new Error(`${op}: interface ${iface}: No such device`) as Error & { code: string };
    err.code = 'ENODEV';
    throw err;
  }
}

/** An IPv6 VIP needs IPv6 on lo (where it lives) and on the interface (where the
 *  solicitations arrive and the answers leave); refuse clearly before changing anything. */
function checkIPv6Enabled(op: string, devs: string[]): void {
  for (const dev of devs) {
    const key = `net/ipv6/conf/${dev}/disable_ipv6`;
    if (!existsSync(join(sysctlRoot(), key)) || readSysctl(key) !== '0') {
      throw new DataplaneInputError(`${op}: IPv6 is disabled on ${dev} (net.ipv6.conf.${dev}.disable_ipv6 is not 0): an IPv6 virtual IP cannot be served`);
    }
  }
}

export function bindVips(farmName: string, iface: string, vips: string[]): void {
  const op = 'bindVips';
  const name = checkFarmName(op, farmName);
  const dev = checkIface(op, iface);
  const ips = checkVips(op, vips);
  checkIfaceExists(op, dev);
  if (ips.some((ip) => ipFamilyOf(ip) === 'ipv6')) checkIPv6Enabled(op, ['lo', dev]);
  const path = statePath(name);
  const plan = sysctlPlan(dev);
  const had: SavedSysctls | undefined = existsSync(path) ? readSaved(path) : undefined;
  // saved once per key: the value found then is the original, what is there now may be ours
  const keys = plan.map(([k]) => k).filter((k) => !had || !(k in had.values));
  if (keys.length > 0 || had?.iface !== dev) {
    const current = Object.fromEntries(keys.map((k) => [k, readSysctl(k)]));
    writeSaved(path, { iface: dev, values: { ...had?.values, ...originalsFor(keys, current, othersSaved(name)) } });
  }
  for (const [k, v] of plan) writeSysctl(k, v);
  for (const ip of ips) native().addrAdd('lo', ip, hostPrefix(ip));
}

/**
 * Removes the addresses; with `keepSysctls` (the farm still serves other addresses on
 * that interface) the interface's ARP settings stay as the farm needs them.
 */
export function unbindVips(farmName: string, iface: string, vips: string[], opts: { keepSysctls?: boolean } = {}): void {
  const op = 'unbindVips';
  const name = checkFarmName(op, farmName);
  checkIface(op, iface);
  const ips = vips.length === 0 && opts.keepSysctls ? [] : checkVips(op, vips);
  for (const ip of ips) native().addrDel('lo', ip, hostPrefix(ip));
  if (opts.keepSysctls) return;
  const path = statePath(name);
  if (!existsSync(path)) return;
  const saved = readSaved(path);
  for (const k of keysToRestore(saved, othersSaved(name))) {
    // the interface may be gone by now; "all" is restored regardless
    if (existsSync(join(sysctlRoot(), k))) writeSysctl(k, saved.values[k]);
  }
  rmSync(path, { force: true });
}

/**
 * The farm moved off `iface` (bindVips on the new one came first): its settings there go
 * back to their originals, unless another farm still relies on them, and are no longer
 * saved. The "all" keys stay as the farm needs them.
 */
export function releaseInterface(farmName: string, iface: string): void {
  const op = 'releaseInterface';
  const name = checkFarmName(op, farmName);
  const dev = checkIface(op, iface);
  const path = statePath(name);
  if (!existsSync(path)) return;
  const saved = readSaved(path);
  const mine = Object.keys(saved.values).filter((k) => k.startsWith(`net/ipv4/conf/${dev}/`));
  if (mine.length === 0) return;
  const others = othersSaved(name);
  const restore = keysToRestore({ iface: dev, values: Object.fromEntries(mine.map((k) => [k, saved.values[k]!])) }, others);
  for (const k of restore) if (existsSync(join(sysctlRoot(), k))) writeSysctl(k, saved.values[k]!);
  const values = { ...saved.values };
  for (const k of mine) delete values[k];
  writeSaved(path, { ...saved, values });
}
