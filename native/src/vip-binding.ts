// Binds the VIPs the way farm mode needs: /32 on lo (every node accepts the VIP) plus
// sysctls so the kernel itself never answers ARP for it. The original sysctl values
// are saved under /run/vipfarm, per farm and network namespace, so even a restarted
// agent restores what was there before it came.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from './load.js';
import { checkFarmName, checkIface, checkVips, DataplaneInputError } from './validate.js';

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

interface SavedSysctls {
  iface: string;
  values: Record<string, string>;
}

function runDir(): string {
  return process.env.VIPFARM_RUN_DIR ?? '/run/vipfarm';
}

function statePath(farmName: string): string {
  // the network namespace's inode tells apart the nodes of a test bed on one host
  const netns = statSync('/proc/self/ns/net').ino;
  return join(runDir(), `sysctl-${farmName}-netns${netns}.json`);
}

function readSysctl(key: string): string {
  return readFileSync(join('/proc/sys', key), 'utf8').trim();
}

function writeSysctl(key: string, value: string): void {
  writeFileSync(join('/proc/sys', key), value);
}

function checkIfaceExists(op: string, iface: string): void {
  if (!existsSync(join('/proc/sys/net/ipv4/conf', iface))) {
    const err = new Error(`${op}: interface ${iface}: No such device`) as Error & { code: string };
    err.code = 'ENODEV';
    throw err;
  }
}

export function bindVips(farmName: string, iface: string, vips: string[]): void {
  const op = 'bindVips';
  const name = checkFarmName(op, farmName);
  const dev = checkIface(op, iface);
  const ips = checkVips(op, vips);
  checkIfaceExists(op, dev);
  const path = statePath(name);
  const plan = sysctlPlan(dev);
  if (!existsSync(path)) {
    const saved: SavedSysctls = { iface: dev, values: Object.fromEntries(plan.map(([k]) => [k, readSysctl(k)])) };
    mkdirSync(runDir(), { recursive: true, mode: 0o755 });
    writeFileSync(`${path}.tmp`, JSON.stringify(saved));
    renameSync(`${path}.tmp`, path);
  }
  for (const [k, v] of plan) writeSysctl(k, v);
  for (const ip of ips) native().addrAdd('lo', ip, 32);
}

export function unbindVips(farmName: string, iface: string, vips: string[]): void {
  const op = 'unbindVips';
  const name = checkFarmName(op, farmName);
  checkIface(op, iface);
  const ips = checkVips(op, vips);
  for (const ip of ips) native().addrDel('lo', ip, 32);
  const path = statePath(name);
  if (!existsSync(path)) return;
  let saved: SavedSysctls;
  try {
    saved = JSON.parse(readFileSync(path, 'utf8')) as SavedSysctls;
  } catch (err) {
    throw new DataplaneInputError(`${op}: unreadable saved sysctls ${path}: ${String(err)}`);
  }
  for (const [k, v] of Object.entries(saved.values)) {
    // the interface may be gone by now; "all" is restored regardless
    if (existsSync(join('/proc/sys', k))) writeSysctl(k, v);
  }
  rmSync(path, { force: true });
}
