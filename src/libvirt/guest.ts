import {
  VIR_DOMAIN_START_PAUSED,
  VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
  VIR_DOMAIN_UNDEFINE_NVRAM,
  VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
  type Domain,
} from '@nova-temporal/libvirt';
import { powerStateFromLibvirt, type PowerState } from '../domain/power-state.js';
import { hasCode, VIR_ERR_OPERATION_INVALID } from './errors.js';

/** One libvirt domain, as Nova's libvirt.guest.Guest: each method is one libvirt call. */
export class Guest {
  constructor(private readonly domain: Domain) {}

  get uuid(): string {
    return this.domain.uuid;
  }

  get name(): string {
    return this.domain.name;
  }

  /** virDomainCreateWithFlags, paused when the caller still waits for vif events. */
  async launch(pause: boolean): Promise<void> {
    await this.domain.createWithFlags(pause ? VIR_DOMAIN_START_PAUSED : 0);
  }

  async resume(): Promise<void> {
    await this.domain.resume();
  }

  async isActive(): Promise<boolean> {
    return this.domain.isActive();
  }

  /** virDomainDestroy; a guest that is already off is what we wanted. */
  async poweroff(): Promise<void> {
    try {
      await this.domain.destroy();
    } catch (err) {
      if (hasCode(err, VIR_ERR_OPERATION_INVALID)) return;
      throw err;
    }
  }

  /** virDomainUndefineFlags: removes the definition only; disks are never touched. */
  async deleteConfiguration(): Promise<void> {
    await this.domain.undefineFlags(
      VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM,
    );
  }

  async getState(): Promise<number> {
    return (await this.domain.getState()).state;
  }

  async getPowerState(): Promise<PowerState> {
    return powerStateFromLibvirt(await this.getState());
  }
}
