// Tests for native/ (libvirt N-API binding) against a real libvirtd at
// qemu:///system. Every domain is named nt-native-test-* and removed in after().
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

import * as lv from '../../native/index.js';

const URI = 'qemu:///system';
const haveDaemon = existsSync('/run/libvirt/libvirt-sock');
const indexUrl = new URL('../../native/index.js', import.meta.url).href;

function domainXML(name, uuid) {
  return `<domain type='kvm'><name>${name}</name><uuid>${uuid}</uuid>
  <memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`;
}

async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the promise to reject');
}

function waitFor(predicate, ms, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (predicate()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 5);
  });
}

// Runs a script in a fresh node process; returns { status, stdout, stderr, ms }.
function runChild(source, args = [], timeout = 20000) {
  const started = Date.now();
  const res = spawnSync(process.execPath, [...args, '--input-type=module', '-e', source], {
    encoding: 'utf8',
    timeout,
  });
  return { ...res, ms: Date.now() - started };
}

test('constants match libvirt headers', () => {
  assert.equal(lv.VIR_ERR_INTERNAL_ERROR, 1);
  assert.equal(lv.VIR_ERR_NO_CONNECT, 5);
  assert.equal(lv.VIR_ERR_OPERATION_FAILED, 9);
  assert.equal(lv.VIR_ERR_XML_ERROR, 27);
  assert.equal(lv.VIR_ERR_XML_DETAIL, 35);
  assert.equal(lv.VIR_ERR_SYSTEM_ERROR, 38);
  assert.equal(lv.VIR_ERR_RPC, 39);
  assert.equal(lv.VIR_ERR_NO_DOMAIN, 42);
  assert.equal(lv.VIR_ERR_OPERATION_INVALID, 55);
  assert.equal(lv.VIR_ERR_CONFIG_UNSUPPORTED, 67);
  assert.equal(lv.VIR_FROM_RPC, 7);
  assert.equal(lv.VIR_FROM_QEMU, 10);
  assert.equal(lv.VIR_FROM_DOMAIN, 20);
  assert.deepEqual(
    [lv.VIR_DOMAIN_NOSTATE, lv.VIR_DOMAIN_RUNNING, lv.VIR_DOMAIN_PAUSED, lv.VIR_DOMAIN_SHUTOFF],
    [0, 1, 3, 5],
  );
  assert.equal(lv.VIR_DOMAIN_START_PAUSED, 1);
  assert.equal(lv.VIR_DOMAIN_EVENT_RESUMED, 4);
});

test('binding errors without a daemon', async () => {
  const err = await rejection(lv.Connection.open('bogus:///nothing'));
  assert.ok(err instanceof lv.LibvirtError);
  assert.ok(err instanceof Error);
  assert.equal(err.code, lv.VIR_ERR_NO_CONNECT);
  assert.equal(typeof err.domain, 'number');
  assert.equal(err.level, lv.VIR_ERR_ERROR);
  assert.throws(() => new lv.Connection(), TypeError);
  assert.throws(() => new lv.Domain(), TypeError);
});

test('closed connection: close is idempotent and later calls reject', async () => {
  const conn = await lv.Connection.open('test:///default'); // in-process driver
  assert.equal(conn.isAlive(), true);
  await conn.close();
  await conn.close();
  assert.equal(conn.isAlive(), false);
  const err = await rejection(conn.getLibVersion());
  assert.ok(err instanceof lv.LibvirtError);
  assert.equal(err.code, lv.VIR_ERR_INVALID_CONN);
  assert.throws(() => conn.onClose(() => {}), lv.LibvirtError);
  assert.throws(() => conn.onLifecycleEvent(() => {}), lv.LibvirtError);
  assert.equal(conn.offLifecycleEvent(1), false);
});

test('finalizers and exit: a process with unclosed connections and listeners exits', () => {
  // Drops lots of Domain and Connection objects, forces GC, never calls close().
  const res = runChild(
    `
    const lv = await import(${JSON.stringify(indexUrl)});
    for (let i = 0; i < 20; i++) {
      const c = await lv.Connection.open('test:///default');
      c.onLifecycleEvent(() => {});
      c.onClose(() => {});
      for (let j = 0; j < 50; j++) await c.lookupDomainByName('test');
    }
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 50));
    globalThis.gc();
    const keep = await lv.Connection.open('test:///default');
    keep.onLifecycleEvent(() => {});
    console.log('done', (await keep.listAllDomains()).length);
    `,
    ['--expose-gc'],
  );
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /done 1/);
  assert.ok(res.ms < 10000, `child took ${res.ms} ms to exit`);
});

describe('qemu:///system', { skip: !haveDaemon && 'libvirtd socket not found' }, () => {
  let conn;
  const created = []; // names to destroy+undefine in after()

  async function define(tag) {
    const name = `nt-native-test-${tag}-${process.pid}-${randomUUID().slice(0, 8)}`;
    const uuid = randomUUID();
    created.push(name);
    const dom = await conn.defineDomainXML(domainXML(name, uuid));
    return { dom, name, uuid };
  }

  before(async () => {
    conn = await lv.Connection.open(URI);
  });

  after(async () => {
    for (const name of created) {
      const dom = await conn.lookupDomainByName(name).catch(() => null);
      if (!dom) continue;
      await dom.destroy().catch(() => {});
      await dom.undefineFlags(0).catch(() => {});
    }
    await conn.close();
  });

  test('lifecycle: define, start paused, resume, destroy, undefine', async (t) => {
    const ms = {};
    const time = async (label, fn) => {
      const started = performance.now();
      const out = await fn();
      ms[label] = +(performance.now() - started).toFixed(1);
      return out;
    };

    const { dom, name, uuid } = await time('define', () => define('life'));
    assert.equal(dom.uuid, uuid);
    assert.equal(dom.name, name);
    assert.deepEqual(await dom.getState(), { state: lv.VIR_DOMAIN_SHUTOFF, reason: 0 });
    assert.equal(await dom.isActive(), false);

    await time('startPaused', () => dom.createWithFlags(lv.VIR_DOMAIN_START_PAUSED));
    assert.equal((await dom.getState()).state, lv.VIR_DOMAIN_PAUSED);

    // Register before resuming: the event may arrive before resume() settles.
    const events = [];
    const id = conn.onLifecycleEvent((ev) => {
      if (ev.uuid === uuid) events.push(ev);
    });
    assert.equal(typeof id, 'number');
    await time('resume', () => dom.resume());
    assert.equal((await dom.getState()).state, lv.VIR_DOMAIN_RUNNING);
    assert.equal(await dom.isActive(), true);
    await waitFor(() => events.some((e) => e.event === lv.VIR_DOMAIN_EVENT_RESUMED), 5000, 'RESUMED event');
    assert.equal(events[0].name, name);

    const xml = await dom.getXMLDesc(0);
    assert.match(xml, new RegExp(`<name>${name}</name>`));
    const running = await conn.listAllDomains(lv.VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    assert.ok(running.some((d) => d.uuid === uuid));

    await time('destroy', () => dom.destroy());
    assert.equal((await dom.getState()).state, lv.VIR_DOMAIN_SHUTOFF);
    await waitFor(() => events.some((e) => e.event === lv.VIR_DOMAIN_EVENT_STOPPED), 5000, 'STOPPED event');
    assert.equal(conn.offLifecycleEvent(id), true);
    assert.equal(conn.offLifecycleEvent(id), false);

    await time('undefine', () => dom.undefineFlags(0));
    const err = await rejection(conn.lookupDomainByUUID(uuid));
    assert.ok(err instanceof lv.LibvirtError);
    assert.equal(err.code, lv.VIR_ERR_NO_DOMAIN);
    assert.equal(err.domain, lv.VIR_FROM_QEMU); // the qemu driver reports it
    assert.match(err.message, new RegExp(uuid));
    // Operating on the stale handle fails the same way.
    assert.equal((await rejection(dom.getState())).code, lv.VIR_ERR_NO_DOMAIN);
    t.diagnostic(`timings ms ${JSON.stringify(ms)}`);
  });

  test('bad XML rejects with an XML error', async () => {
    const malformed = await rejection(conn.defineDomainXML('<domain type="kvm"><name>'));
    assert.ok(malformed instanceof lv.LibvirtError);
    assert.equal(malformed.code, lv.VIR_ERR_XML_DETAIL); // libxml2 parse error
    assert.equal(malformed.domain, lv.VIR_FROM_DOMAIN);

    const invalid = await rejection(conn.defineDomainXML('<domain type="kvm"><name>x</name></domain>'));
    assert.equal(invalid.code, lv.VIR_ERR_XML_ERROR); // well-formed but not a valid domain
  });

  test('200 concurrent failing lookups each get their own error', async () => {
    const uuids = Array.from({ length: 200 }, () => randomUUID());
    // Interleave successes so an error leaking across pool threads would show.
    const results = await Promise.allSettled(uuids.flatMap((u) => [conn.lookupDomainByUUID(u), conn.getLibVersion()]));
    for (let i = 0; i < uuids.length; i++) {
      const failed = results[2 * i];
      const ok = results[2 * i + 1];
      assert.equal(failed.status, 'rejected');
      assert.equal(failed.reason.code, lv.VIR_ERR_NO_DOMAIN);
      assert.ok(failed.reason.message.includes(uuids[i]), failed.reason.message);
      assert.equal(ok.status, 'fulfilled');
      assert.equal(typeof ok.value, 'number');
    }
  });

  test('the JS event loop keeps ticking while a domain starts', async (t) => {
    const { dom } = await define('tick');
    let last = performance.now();
    let maxGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const started = performance.now();
    try {
      await dom.createWithFlags(lv.VIR_DOMAIN_START_PAUSED);
    } finally {
      clearInterval(timer);
    }
    const took = performance.now() - started;
    t.diagnostic(`start took ${took.toFixed(0)} ms, ${ticks} ticks, max gap ${maxGap.toFixed(1)} ms`);
    assert.ok(took > 50, 'start was too fast to tell anything');
    assert.ok(maxGap < 100, `event loop stalled for ${maxGap.toFixed(1)} ms`);
    assert.ok(ticks >= took / 20);
    await dom.destroy();
    await dom.undefineFlags(0);
  });

  test('several lifecycle listeners on one connection all fire', async () => {
    const { dom, uuid } = await define('multi');
    const seen = [[], [], []];
    const ids = seen.map((list) => conn.onLifecycleEvent((ev) => ev.uuid === uuid && list.push(ev.event)));
    try {
      conn.offLifecycleEvent(ids[2]); // removed listeners get nothing
      await dom.createWithFlags(lv.VIR_DOMAIN_START_PAUSED);
      await waitFor(
        () => seen[0].includes(lv.VIR_DOMAIN_EVENT_STARTED) && seen[1].includes(lv.VIR_DOMAIN_EVENT_STARTED),
        5000,
        'STARTED on both listeners',
      );
      await dom.destroy();
      await dom.undefineFlags(0);
      await waitFor(() => seen[1].includes(lv.VIR_DOMAIN_EVENT_UNDEFINED), 5000, 'UNDEFINED');
      assert.deepEqual(seen[0], seen[1]);
      assert.deepEqual(seen[2], []);
    } finally {
      ids.forEach((id) => conn.offLifecycleEvent(id));
    }
    assert.ok(conn.isAlive());
  });

  test('a second connection sees events and its onClose does not fire on close()', async () => {
    const c = await lv.Connection.open(URI);
    const events = [];
    try {
      c.onClose(() => assert.fail('must not fire on close()'));
      c.onClose(() => assert.fail('must not fire on close()'));
      c.onLifecycleEvent((ev) => events.push(ev));
      const { dom, uuid } = await define('second');
      await dom.undefineFlags(0);
      await waitFor(
        () => events.some((e) => e.uuid === uuid && e.event === lv.VIR_DOMAIN_EVENT_UNDEFINED),
        5000,
        'UNDEFINED',
      );
    } finally {
      await c.close();
    }
    await new Promise((r) => setTimeout(r, 50));
  });
});
