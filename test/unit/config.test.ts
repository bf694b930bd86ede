import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';
import { temporalTls } from '../../src/temporal.js';

test('NT_* overrides are applied and validated, naming the setting', () => {
  const c = loadConfig({ NT_HOST: 'compute-7', NT_VIF_PLUGGING_TIMEOUT: '42', NT_WAIT_FOR_VIF_PLUGGED: 'all' });
  assert.equal(c.host, 'compute-7');
  assert.equal(c.vif_plugging_timeout, 42);
  assert.equal(c.wait_for_vif_plugged, 'all');
  assert.throws(() => loadConfig({ NT_VIF_PLUGGING_TIMEOUT: '5m' }), /NT_VIF_PLUGGING_TIMEOUT/);
  assert.throws(() => loadConfig({ NT_VIF_PLUGGING_IS_FATAL: 'maybe' }), /NT_VIF_PLUGGING_IS_FATAL/);
  assert.throws(() => loadConfig({ NT_WAIT_FOR_VIF_PLUGGED: 'some' }), /wait_for_vif_plugged/);
  assert.throws(
    () => loadConfig({ NT_HOST: 'bad host;' }),
    (e) => e instanceof ConfigError && /host/.test(e.message),
  );
  assert.throws(() => loadConfig({ NT_INSTANCES_PATH: 'relative/path' }), /instances_path/);
});

test('a config file is merged under the environment and unknown keys are refused', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nt-config-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ vif_plugging_timeout: 30, libvirt: { virt_type: 'qemu' } }));
  const c = loadConfig({ NT_CONFIG: file, NT_VIF_PLUGGING_TIMEOUT: '10' });
  assert.equal(c.vif_plugging_timeout, 10);
  assert.equal(c.libvirt.virt_type, 'qemu');
  assert.equal(c.libvirt.uri, 'qemu:///system');
  writeFileSync(file, JSON.stringify({ vif_pluging_timeout: 30 }));
  assert.throws(() => loadConfig({ NT_CONFIG: file }), /vif_pluging_timeout|Unrecognized/);
});

test('Temporal TLS: off by default, server CA and mTLS pair from PEM files', () => {
  assert.equal(temporalTls(loadConfig({})), undefined);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nt-tls-'));
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(dir, f), `--- ${f} ---`);
  const tls = temporalTls(
    loadConfig({
      NT_TEMPORAL_TLS_CA: path.join(dir, 'ca.pem'),
      NT_TEMPORAL_TLS_CERT: path.join(dir, 'cert.pem'),
      NT_TEMPORAL_TLS_KEY: path.join(dir, 'key.pem'),
      NT_TEMPORAL_TLS_SERVER_NAME: 'temporal.example.internal',
    }),
  );
  assert.equal(tls?.serverNameOverride, 'temporal.example.internal');
  assert.equal(String(tls?.serverRootCACertificate), '--- ca.pem ---');
  assert.equal(String(tls?.clientCertPair?.crt), '--- cert.pem ---');
  assert.throws(() => loadConfig({ NT_TEMPORAL_TLS_CERT: path.join(dir, 'cert.pem') }), /cert and key go together/);
  assert.throws(() => temporalTls(loadConfig({ NT_TEMPORAL_TLS_CA: '/nonexistent/ca.pem' })), /temporal\.tls\.ca/);
});
