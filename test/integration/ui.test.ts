import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { startNeutronDevServer, type NeutronDevServer } from '../../dev/neutron/server.js';
import { logger } from '../../src/log.js';
import { NeutronClient } from '../../src/neutron/client.js';
import { NeutronNetworkInfoSource, NeutronPortBinder } from '../../src/neutron/source.js';
import { powerOnWorkflowId, type PowerOnProgress } from '../../src/workflows/definitions.js';
import {
  chromiumPath,
  launchBrowser,
  screenshot,
  uiArtifactsDir,
  visible,
  waitForHttp,
  type TestBrowser,
} from '../support/browser.js';
import { freePort, startStack, type TestStack } from '../support/stack.js';

// What an operator sees in the Temporal Web UI (DESIGN.md sections 2 and 10):
// the static summary and details given at start, the current details the
// workflow sets as it goes, and the typed search attributes. Headless Chromium
// (Debian's) looks at the dev server's own UI; screenshots go to test-artifacts/ui/.

const VIF_PLUGGING_TIMEOUT = 120; // s: the waiting power-on must still wait when the browser looks at it

let stack: TestStack;
let neutron: NeutronDevServer;
let browser: TestBrowser;
let uiUrl: string;
let setupMs: number;

interface PoweredOn {
  id: string;
  name: string;
  runId: string;
  portIds: string[];
}
let finished: PoweredOn;
let waiting: PoweredOn & { deadline: string };
const instances: { id: string; portIds: string[] }[] = [];

const handle = (id: string) => stack.env.client.workflow.getHandle(powerOnWorkflowId(id));

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(
  async () => {
    const started = Date.now();
    rmSync(uiArtifactsDir, { recursive: true, force: true });
    // First: installing Chromium (a fresh machine) must not eat into the plugging timeout below.
    const executablePath = chromiumPath();
    const apiPort = await freePort();
    const token = `test-token-${randomUUID().slice(0, 8)}`;
    const neutronLog = logger.child({ component: 'neutron-dev' });
    neutronLog.level = process.env.NT_TEST_LOG_LEVEL ?? 'warn';
    neutron = await startNeutronDevServer({
      port: 0,
      token,
      apiUrl: `http://127.0.0.1:${apiPort}/v2.1`,
      apiToken: token,
      pollIntervalMs: 50,
      logger: neutronLog,
    });
    const client = new NeutronClient({ url: neutron.url, auth: { token } });
    stack = await startStack({
      apiPort,
      token,
      ui: true,
      network: new NeutronNetworkInfoSource(client, { integrationBridge: 'br-int' }),
      ports: new NeutronPortBinder(client),
      config: { vif_plugging_timeout: VIF_PLUGGING_TIMEOUT, neutron: { url: neutron.url, token } },
    });
    assert.ok(stack.uiUrl, 'the stack runs the Web UI');
    uiUrl = stack.uiUrl;
    const net = await client.createNetwork({ name: `nt-ui-${randomUUID().slice(0, 6)}` });
    await client.createSubnet({ network_id: net.id, cidr: '10.79.0.0/24', ip_version: 4 });

    // One power-on with no ports runs to the end; one with a port whose agent
    // never reports it waits for network-vif-plugged.
    const port = await client.createPort({ network_id: net.id });
    const res = await fetch(`${neutron.url}/dev/ports/${port.id}/behaviour`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'silent' }),
    });
    assert.equal(res.status, 200);
    const done = await register('ui-finished', []);
    const wait = await register('ui-waiting', [port.id]);
    await powerOn(done.id);
    await powerOn(wait.id);

    await handle(done.id).result();
    finished = { ...done, runId: (await handle(done.id).describe()).runId };
    const progress = await until('the wait for network-vif-plugged', async () => {
      const p = await handle(wait.id)
        .query<PowerOnProgress>('progress')
        .catch(() => undefined); // not answerable before the first workflow task ran
      return p?.step === 'waitForVifPlugged' && p.timerDeadline ? p : undefined;
    });
    waiting = { ...wait, runId: (await handle(wait.id).describe()).runId, deadline: progress.timerDeadline! };

    await waitForHttp(uiUrl);
    browser = await launchBrowser({ origin: uiUrl, executablePath });
    setupMs = Date.now() - started;
  },
  { timeout: 300_000 },
);

after(async () => {
  await browser?.close();
  if (stack) {
    if (waiting) {
      await handle(waiting.id)
        .terminate('ui test done')
        .catch(() => undefined);
    }
    // Every instance is powered off and unplugged the way `make down` does it.
    const { createHostActivities } = await import('../../src/activities/index.js');
    const { ImageSource } = await import('../../src/host/image-source.js');
    const host = createHostActivities({
      host: stack.host,
      instancesPath: stack.config.instances_path,
      virtType: 'kvm',
      images: new ImageSource(stack.config.images_path),
      integrationBridge: 'br-int',
      firewallDriver: 'nftables',
    });
    for (const i of instances) await host.cleanupInstance({ instanceUuid: i.id, portIds: i.portIds });
    await stack.stop();
  }
  await neutron?.close();
});

async function register(name: string, portIds: string[]): Promise<Omit<PoweredOn, 'runId'>> {
  const id = randomUUID();
  instances.push({ id, portIds });
  const res = await stack.api('POST', '/servers', {
    server: {
      id,
      name,
      flavor: { vcpus: 1, ram: 64, disk: 1 },
      imageRef: stack.imageId,
      networks: portIds.map((port) => ({ port })),
    },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id, name, portIds };
}

async function powerOn(id: string): Promise<void> {
  const res = await stack.api('POST', `/servers/${id}/action`, { 'os-start': null });
  assert.equal(res.status, 202, JSON.stringify(res.body));
}

const workflowPage = (i: PoweredOn, tab: string) =>
  `${uiUrl}/namespaces/default/workflows/${encodeURIComponent(powerOnWorkflowId(i.id))}/${i.runId}/${tab}`;

const summaryOf = (i: PoweredOn) => `Power on ${i.name} (${i.id}) on ${stack.config.host}`;

/** Opens a page, runs the checks, and saves a screenshot (`<name>-failed` when a check failed). */
async function look(t: TestContext, name: string, url: string, check: (page: Page) => Promise<void>): Promise<void> {
  const page = await browser.newPage();
  const started = Date.now();
  try {
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await check(page);
    const file = await screenshot(page, name);
    t.diagnostic(`${name}: checked in ${Date.now() - started} ms, screenshot ${file}`);
  } catch (err) {
    const file = await screenshot(page, `${name}-failed`).catch(() => 'none');
    t.diagnostic(`${name}: failed after ${Date.now() - started} ms, screenshot ${file}`);
    throw err;
  } finally {
    await page.close();
  }
}

/** The workflow page's User Metadata tab: summary, details and current details, each rendered markdown in a frame. */
function userMetadata(page: Page) {
  return {
    summary: page.frameLocator('#user-metadata-summary'),
    details: page.frameLocator('#user-metadata-details'),
    current: page.frameLocator('#user-metadata-current-details'),
  };
}

test(
  'the finished power-on shows its static summary, details and final current details',
  { timeout: 120_000 },
  async (t) => {
    t.diagnostic(`set-up (stack, two power-ons, browser) took ${setupMs} ms`);
    await look(t, 'finished-user-metadata', workflowPage(finished, 'user-metadata'), async (page) => {
      await visible(page.getByText(powerOnWorkflowId(finished.id), { exact: true }).first());
      await visible(
        page
          .getByText(/^completed$/i)
          .filter({ visible: true })
          .first(),
      );
      const { summary, details, current } = userMetadata(page);
      await visible(summary.getByText(summaryOf(finished), { exact: true }));
      await visible(details.getByText(`Instance: ${finished.id}`, { exact: true }));
      await visible(details.getByText(`Host: ${stack.config.host}`, { exact: true }));
      await visible(details.getByText(`vif_plugging_timeout ${VIF_PLUGGING_TIMEOUT}s`));
      await visible(current.getByText('Step: done', { exact: true }));
      for (const step of ['beginPowerOn', 'createDomain', 'resumeDomain', 'finishPowerOn']) {
        await visible(current.getByRole('row', { name: new RegExp(`^${step} Success \\d+$`) }));
      }
      assert.equal(
        await current.getByText('Waiting for network-vif-plugged').count(),
        0,
        'no wait on a portless instance',
      );
    });
  },
);

test('the waiting power-on shows what it waits for', { timeout: 120_000 }, async (t) => {
  const left = Date.parse(waiting.deadline) - Date.now();
  assert.ok(left > 15_000, `the power-on still waits while the browser looks (${left} ms of its timeout left)`);
  await look(t, 'waiting-user-metadata', workflowPage(waiting, 'user-metadata'), async (page) => {
    await visible(
      page
        .getByText(/^running$/i)
        .filter({ visible: true })
        .first(),
    );
    const { summary, current } = userMetadata(page);
    await visible(summary.getByText(summaryOf(waiting), { exact: true }));
    const wait = await visible(current.getByText('Waiting for network-vif-plugged on 1 of 1 ports'));
    const text = await wait.innerText();
    assert.match(text, /Step: waitForVifPlugged/);
    assert.ok(text.includes(`timeout ${waiting.deadline}`), `the deadline ${waiting.deadline} is shown: ${text}`);
    assert.ok(text.includes(`Missing: ${waiting.portIds[0]}`), `the missing port is named: ${text}`);
    await visible(current.getByRole('row', { name: /^createDomain Success \d+$/ }));
  });
  // The typed search attribute says the same.
  await look(t, 'waiting-search-attributes', workflowPage(waiting, 'search-attributes'), async (page) => {
    await visible(page.locator('.cm-line', { hasText: '"PowerOnStep": "waitForVifPlugged"' }));
    await visible(page.locator('.cm-line', { hasText: `"InstanceUuid": "${waiting.id}"` }));
    await visible(page.locator('.cm-line', { hasText: `"ComputeHost": "${stack.config.host}"` }));
  });
});

test('the workflow list filtered by InstanceUuid shows exactly that workflow', { timeout: 120_000 }, async (t) => {
  const query = `InstanceUuid="${waiting.id}"`;
  await look(
    t,
    'list-by-instance-uuid',
    `${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`,
    async (page) => {
      const rows = page.getByTestId('workflows-summary-configurable-table-row');
      await visible(rows.filter({ hasText: powerOnWorkflowId(waiting.id) }));
      await visible(page.getByText(`InstanceUuid = "${waiting.id}"`).first());
      assert.equal(await rows.count(), 1, 'one row');
      const row = await rows.first().innerText();
      assert.ok(row.includes(waiting.runId), `the waiting run: ${row}`);
      assert.match(row, /RUNNING/);
      assert.match(row, /PowerOnInstance/);
      assert.equal(await page.getByText(powerOnWorkflowId(finished.id)).count(), 0, 'the other power-on is not listed');
    },
  );
});
