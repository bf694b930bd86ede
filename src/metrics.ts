import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StepRecord } from './workflows/definitions.js';

// Power-on metrics, observed by the control plane when a power-on ends (from the
// workflow's step journal), next to the Temporal SDK's own metrics.

export class PowerOnMetrics {
  readonly registry = new Registry();
  private readonly duration = new Histogram({
    name: 'nova_temporal_power_on_duration_seconds',
    help: 'Time from beginPowerOn to the end of the power-on, by outcome',
    labelNames: ['outcome'],
    buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 600],
    registers: [this.registry],
  });
  private readonly vifWait = new Histogram({
    name: 'nova_temporal_vif_event_wait_seconds',
    help: 'Time spent waiting for network-vif-plugged events',
    labelNames: ['outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  private readonly compensations = new Counter({
    name: 'nova_temporal_compensations_total',
    help: 'Power-ons that ran their compensations, by failure type',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'nova_temporal_' });
  }

  powerOnEnded(outcome: 'succeeded' | 'failed', steps: StepRecord[], reason?: string): void {
    // Called from the last activity of the power-on: "now" is its end.
    const first = steps[0];
    if (first) this.duration.observe({ outcome }, (Date.now() - Date.parse(first.startedAt)) / 1000);
    const wait = steps.find((s) => s.name === 'waitForVifPlugged');
    if (wait?.durationMs != null) {
      this.vifWait.observe({ outcome: wait.result === 'Success' ? 'plugged' : 'failed' }, wait.durationMs / 1000);
    }
    if (outcome === 'failed') this.compensations.inc({ reason: reason ?? 'unknown' });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
