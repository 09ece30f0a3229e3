#!/usr/bin/env node
// vipfarm-operator: wiring only. See args.ts for flags, controller.ts for watches,
// reconciler.ts for what one reconcile does, leader.ts for the Lease.
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../common/src/log.js';
import { HELP, parseArgs } from './args.js';
import { Controller } from './controller.js';
import { KubeEventRecorder } from './events.js';
import { startHttp } from './http.js';
import { Kube } from './kube.js';
import { LeaderElector, type Lease } from './leader.js';
import { OperatorMetrics } from './metrics.js';
import { Reconciler } from './reconciler.js';
import { startProxyHealth, type ProxyHealth } from './kube-proxy-health.js';
import { ServiceSync } from './service-sync.js';

async function main(): Promise<number> {
  const parsed = parseArgs(process.argv.slice(2), process.env);
  if (!parsed.ok) {
    if (parsed.help) {
      process.stdout.write(HELP);
      return 0;
    }
    process.stderr.write(`vipfarm-operator: ${parsed.error}\n`);
    return 2;
  }
  const o = parsed.options;
  process.env.VIPFARM_LOG_LEVEL = o.logLevel;
  const log = createLogger('operator', { identity: o.identity });

  const kc = new KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  const kube = new Kube(kc);
  const metrics = new OperatorMetrics();
  const events = new KubeEventRecorder((e) => kube.create(e), o.identity, log);
  let controller: Controller | undefined;
  let proxyHealth: ProxyHealth | undefined;
  const reconciler = new Reconciler({
    kube,
    caches: { daemonSet: (ns, n) => controller?.caches().daemonSet(ns, n), agentPods: (ns, f) => controller?.caches().agentPods(ns, f) ?? [] },
    settings: o.settings,
    events,
    metrics,
    log,
    randomBytes,
    finalizerTimeoutMs: o.finalizerTimeoutMs,
    memberGraceMs: o.memberGraceMs,
    // Test-only fault injection (see test/operator): not a flag, so nobody sets it by accident.
    applyDelayMs: Number(process.env.VIPFARM_TEST_APPLY_DELAY_MS ?? 0) || undefined,
  });
  let synced = false;
  let shuttingDown = false;
  let elector: LeaderElector | undefined;
  const server = await startHttp(o.httpPort, metrics.registry, () => synced || (o.leaderElect && !elector?.isLeader()));
  log.info('started', { event: 'started', httpPort: server.port, namespace: o.namespace ?? '(all)', leaderElect: o.leaderElect });

  let exitCode = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const lead = async (): Promise<void> => {
    metrics.leader.set(1);
    proxyHealth = startProxyHealth({
      onChange: (t, ready) => {
        log.info('kube-proxy health changed', { event: 'kube_proxy_health', service: t.service, node: t.node, address: `${t.address}:${t.port}`, ready });
        controller?.resyncServices();
      },
    });
    const services = new ServiceSync(kube, events, log, proxyHealth);
    controller = new Controller(kc, kube, reconciler, { namespace: o.namespace, concurrency: o.concurrency, services }, metrics, log);
    try {
      await controller.start();
      synced = true;
    } catch (err) {
      log.error('could not start watches', { event: 'start_error', error: (err as Error).message });
      exitCode = 1;
      resolveDone();
    }
  };

  if (o.leaderElect) {
    elector = new LeaderElector(
      {
        get: (ns, name) => kube.get<Lease>({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: ns, name }),
        create: (l) => kube.create<Lease>(l),
        replace: (l) => kube.replace<Lease>(l),
      },
      { namespace: o.leaseNamespace, name: o.leaseName, identity: o.identity, leaseDurationSeconds: 15, retryPeriodMs: 2000, renewDeadlineMs: 10_000 },
      {
        onStartedLeading: () => {
          log.info('became leader', { event: 'leader_acquired', lease: `${o.leaseNamespace}/${o.leaseName}` });
          void lead();
        },
        onStoppedLeading: () => {
          metrics.leader.set(0);
          if (shuttingDown) return;
          // A replica that lost its Lease may have missed events; restarting is the only
          // way back to a state known to be consistent.
          log.error('lost leadership, exiting', { event: 'leader_lost' });
          exitCode = 1;
          resolveDone();
        },
        onNewLeader: (id) => log.info('leader observed', { event: 'leader_observed', leader: id }),
        onError: (err) => log.warn('lease error', { event: 'lease_error', error: err.message }),
      },
    );
    elector.start();
  } else {
    void lead();
  }

  const shutdown = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down', { event: 'shutdown', signal });
    resolveDone();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  await done;
  shuttingDown = true;
  proxyHealth?.stop();
  await controller?.stop();
  await elector?.stop();
  await server.close();
  log.info('stopped', { event: 'stopped', exitCode });
  return exitCode;
}

main().then(
  (code) => {
    // Let winston flush before exiting.
    setTimeout(() => process.exit(code), 50);
  },
  (err: Error) => {
    process.stderr.write(`vipfarm-operator: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
