import assert from 'node:assert/strict';
import { test } from 'node:test';
import { portsToAwait, tapName, type Vif } from '../../src/domain/network-model.js';
import { PowerOnJournal } from '../../src/workflows/journal.js';

test('events that arrive before the wait are counted when it begins', () => {
  const j = new PowerOnJournal(0);
  j.recordEvent({ name: 'network-vif-plugged', tag: 'p1', status: 'completed' }, 10);
  j.recordEvent({ name: 'network-changed', tag: 'p1', status: 'completed' }, 11);
  j.recordEvent({ name: 'network-vif-plugged', tag: 'other', status: 'completed' }, 12);
  j.awaitPorts(['p1', 'p2'], 1000);
  assert.deepEqual(j.receivedPorts(), ['p1']);
  assert.deepEqual(j.missingPorts(), ['p2']);
  assert.equal(j.allPlugged(), false);
  j.recordEvent({ name: 'network-vif-plugged', tag: 'p2', status: 'completed' }, 20);
  j.recordEvent({ name: 'network-vif-plugged', tag: 'p2', status: 'completed' }, 21); // duplicate
  assert.equal(j.allPlugged(), true);
  assert.equal(j.progress().events.length, 5);
});

test('a failed event for an awaited port is seen as a failure', () => {
  const j = new PowerOnJournal(0);
  j.awaitPorts(['p1'], 1000);
  j.recordEvent({ name: 'network-vif-plugged', tag: 'p1', status: 'failed' }, 5);
  assert.equal(j.anyFailed(), true);
  assert.deepEqual(j.failedPorts(), ['p1']);
});

test('the UI details say what the wait is for', () => {
  const j = new PowerOnJournal(0);
  j.beginStep('waitForVifPlugged', 100);
  j.awaitPorts(['p1', 'p2', 'p3'], Date.parse('2026-11-27T14:03:12Z'));
  j.recordEvent({ name: 'network-vif-plugged', tag: 'p2', status: 'completed' }, 101);
  assert.match(j.details(), /Waiting for network-vif-plugged on 2 of 3 ports, timeout 2026-11-27T14:03:12/);
});

test('steps record their duration and result', () => {
  const j = new PowerOnJournal(0);
  j.beginStep('beginPowerOn', 1000);
  j.endStep(1250, 'Success');
  assert.equal(j.begun(), true);
  assert.deepEqual(
    j.steps().map((s) => [s.name, s.durationMs, s.result]),
    [['beginPowerOn', 250, 'Success']],
  );
});

const vif = (id: string, active: boolean) => ({ id, active }) as Vif;

test('wait_for_vif_plugged picks the ports to wait for', () => {
  const info = [vif('a', true), vif('b', false)];
  assert.deepEqual(portsToAwait(info, 'inactive'), ['b']);
  assert.deepEqual(portsToAwait(info, 'all'), ['a', 'b']);
  assert.deepEqual(portsToAwait(info, 'none'), []);
});

test('tap names are ("tap" + port id)[:14]', () => {
  assert.equal(tapName('8f3e5a52-1c4b-4a57-9d3f-0e2b6f1a7c01'), 'tap8f3e5a52-1c');
});
