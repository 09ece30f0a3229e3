// The operator's Prometheus metrics, on their own registry.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome } from './workqueue.js';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'vipfarm_operator_reconciles_total',
    help: 'FarmCluster reconciles by result (done, requeue, retry, invalid)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'vipfarm_operator_errors_total',
    help: 'Errors by kind (reconcile: API failure retried with backoff; invalid_spec; watch)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'vipfarm_operator_reconcile_duration_seconds',
    help: 'Duration of one FarmCluster reconcile',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'vipfarm_operator_leader',
    help: '1 while this replica holds the leader Lease',
    registers: [this.registry],
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'vipfarm_operator_' });
  }

  observe(outcome: Outcome, seconds: number): void {
    const result = { done: 'done', requeueAfter: 'requeue', retry: 'retry', noRetry: 'invalid' }[outcome.kind];
    this.reconciles.inc({ result });
    this.duration.observe(seconds);
    if (outcome.kind === 'retry') this.errors.inc({ kind: 'reconcile' });
    if (outcome.kind === 'noRetry') this.errors.inc({ kind: 'invalid_spec' });
  }
}
