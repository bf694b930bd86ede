import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyTransition, canTransition, InstanceInvalidState, serverStatus } from '../../src/domain/instance-state.js';

test('only a stopped instance with no task may begin a power-on', () => {
  assert.deepEqual(applyTransition('u', { vmState: 'stopped', taskState: null }, 'begin'), {
    vmState: 'stopped',
    taskState: 'powering-on',
  });
  assert.equal(canTransition({ vmState: 'active', taskState: null }, 'begin'), false);
  assert.equal(canTransition({ vmState: 'stopped', taskState: 'powering-on' }, 'begin'), false);
  assert.throws(
    () => applyTransition('u', { vmState: 'active', taskState: null }, 'begin'),
    (err: unknown) => err instanceof InstanceInvalidState && /vm_state active/.test(err.message),
  );
});

test('finish and revert expect powering-on, like expected_task_state', () => {
  const powering = { vmState: 'stopped', taskState: 'powering-on' } as const;
  assert.deepEqual(applyTransition('u', powering, 'finish'), { vmState: 'active', taskState: null });
  assert.deepEqual(applyTransition('u', powering, 'revert'), { vmState: 'stopped', taskState: null });
  assert.throws(() => applyTransition('u', { vmState: 'stopped', taskState: null }, 'finish'), InstanceInvalidState);
  assert.throws(() => applyTransition('u', { vmState: 'active', taskState: null }, 'revert'), InstanceInvalidState);
});

test('server status follows vm_state as in Nova', () => {
  assert.equal(serverStatus('stopped'), 'SHUTOFF');
  assert.equal(serverStatus('active'), 'ACTIVE');
  assert.equal(serverStatus('error'), 'ERROR');
});
