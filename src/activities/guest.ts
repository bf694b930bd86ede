import { readFile } from 'node:fs/promises';
import { heartbeat, sleep } from '@temporalio/activity';
import { domainXmlPath } from '../domain/image-cache.js';
import { PowerState, type PowerState as PowerStateT } from '../domain/power-state.js';
import { isConfigRejected } from '../libvirt/errors.js';
import type { Host } from '../libvirt/host.js';
import { permanent } from './failures.js';

// Host activities over libvirt. Each one checks the state it finds first, so a
// retry after a crash half-way ends where a single run would.

const VIR_DOMAIN_PAUSED = 3;
const VIR_DOMAIN_RUNNING = 1;

export interface GuestDeps {
  host: Host;
  instancesPath: string;
}

export function createGuestActivities({ host, instancesPath }: GuestDeps) {
  /** Nova's _wait_for_running, without its 0.5 s poll: resume is synchronous in libvirt. */
  async function waitUntilRunning(instanceUuid: string): Promise<PowerStateT> {
    for (let attempt = 0; ; attempt++) {
      const guest = await host.getGuest(instanceUuid);
      if (!guest) throw new Error(`domain ${instanceUuid} vanished while waiting for it to run`);
      const state = await guest.getState();
      if (state === VIR_DOMAIN_RUNNING) return PowerState.RUNNING;
      heartbeat({ state, attempt });
      await sleep(Math.min(50 * 2 ** attempt, 1000));
    }
  }

  return {
    /** _destroy: power off and undefine the old domain. Disks are never touched. */
    async destroyDomain(instanceUuid: string): Promise<void> {
      const guest = await host.getGuest(instanceUuid);
      if (!guest) return;
      await guest.poweroff();
      await guest.deleteConfiguration();
    },

    /** Defines libvirt.xml and starts the guest, paused while vif events are awaited. */
    async createDomain(input: { instanceUuid: string; paused: boolean }): Promise<void> {
      const existing = await host.getGuest(input.instanceUuid);
      if (existing && (await existing.isActive())) return;
      const xml = await readFile(domainXmlPath(instancesPath, input.instanceUuid), 'utf8');
      try {
        const guest = await host.writeInstanceConfig(xml);
        await guest.launch(input.paused);
      } catch (err) {
        if (isConfigRejected(err)) {
          throw permanent('DomainXmlRejected', `libvirt rejected the domain: ${(err as Error).message}`, err as Error);
        }
        throw err;
      }
    },

    /**
     * Resumes a paused guest and returns its power state once it runs. Waiting
     * here saves the separate waitUntilRunning round trip (docs/benchmarks.md);
     * that activity stays for power-ons begun before the change.
     */
    async resumeDomain(instanceUuid: string): Promise<PowerStateT> {
      const guest = await host.getGuest(instanceUuid);
      if (!guest) throw new Error(`domain ${instanceUuid} vanished before resume`);
      if ((await guest.getState()) === VIR_DOMAIN_PAUSED) await guest.resume();
      return waitUntilRunning(instanceUuid);
    },

    waitUntilRunning,

    /** Compensation: power the guest off again, keep its definition and disks. */
    async powerOffDomain(instanceUuid: string): Promise<void> {
      const guest = await host.getGuest(instanceUuid);
      if (guest) await guest.poweroff();
    },
  };
}
