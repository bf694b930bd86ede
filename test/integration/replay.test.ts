import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { workflowsPath } from '../../src/temporal.js';
import { historiesDir } from '../support/histories.js';

// Determinism: histories recorded from real runs (test/histories, refreshed with
// NT_RECORD_HISTORIES=1) replay against the current workflow code. A change
// without patched() must fail this test; the same change behind patched() passes.

try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // another test file in this process installed it already
}

const histories = readdirSync(historiesDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ name: f, history: historyFromJSON(JSON.parse(readFileSync(path.join(historiesDir, f), 'utf8'))) }));

const variant = (name: string) => fileURLToPath(new URL(`../replay-variants/${name}.js`, import.meta.url));

async function replayAll(bundle: WorkflowBundleWithSourceMap): Promise<{ name: string; error?: unknown }[]> {
  const results = [];
  for (const { name, history } of histories) {
    try {
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, `replay-${name}`);
      results.push({ name });
    } catch (error) {
      results.push({ name, error });
    }
  }
  return results;
}

const MAIN_PATHS = [
  'two-ports-happy-path',
  'failed-vif-event',
  'vif-plugging-timeout-fatal',
  'crash-after-create-domain',
];

test('the recorded histories cover the main paths, before and after the resume-waits-until-running patch', () => {
  const names = histories.map((h) => h.name);
  for (const expected of MAIN_PATHS) {
    assert.ok(names.includes(`${expected}.json`), `${expected} recorded with the current code`);
    assert.ok(names.includes(`v1-${expected}.json`), `${expected} recorded before the patch`);
  }
  // v1 histories ran resumeDomain + waitUntilRunning; current ones carry the patch marker.
  const scheduled = (h: (typeof histories)[number]) =>
    (h.history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
  const markers = (h: (typeof histories)[number]) =>
    (h.history.events ?? []).filter((e) => e.markerRecordedEventAttributes).length;
  const v1 = histories.find((h) => h.name === 'v1-two-ports-happy-path.json')!;
  const now = histories.find((h) => h.name === 'two-ports-happy-path.json')!;
  assert.ok(scheduled(v1).includes('waitUntilRunning'));
  assert.equal(markers(v1), 0);
  assert.ok(!scheduled(now).includes('waitUntilRunning'));
  assert.ok(markers(now) >= 1);
});

test('every recorded history replays against the current workflow code', async () => {
  const bundle = await bundleWorkflowCode({ workflowsPath });
  for (const r of await replayAll(bundle)) assert.equal(r.error, undefined, `${r.name}: ${String(r.error)}`);
});

test('a workflow change without patched() is caught by replay', async () => {
  const bundle = await bundleWorkflowCode({ workflowsPath: variant('unpatched') });
  const results = await replayAll(bundle);
  for (const r of results) {
    assert.ok(r.error, `${r.name} must not replay against an unpatched change`);
    assert.match(String((r.error as Error).name ?? ''), /DeterminismViolationError/, String(r.error));
  }
});

test('the same change behind patched() still replays every old history', async () => {
  const bundle = await bundleWorkflowCode({ workflowsPath: variant('patched') });
  for (const r of await replayAll(bundle)) assert.equal(r.error, undefined, `${r.name}: ${String(r.error)}`);
});
