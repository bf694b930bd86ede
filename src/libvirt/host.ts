import { Connection } from '@nova-temporal/libvirt';
import { hasCode, VIR_ERR_NO_DOMAIN } from './errors.js';
import { Guest } from './guest.js';

/**
 * The hypervisor connection, as Nova's libvirt.host.Host: opened lazily and
 * opened again when libvirtd went away, so a restarted libvirtd costs one
 * failed (retried) activity attempt, not a worker restart.
 */
export class Host {
  private connection: Connection | null = null;
  private connecting: Promise<Connection> | null = null;

  constructor(private readonly uri: string) {}

  private async conn(): Promise<Connection> {
    if (this.connection?.isAlive()) return this.connection;
    if (!this.connecting) {
      const stale = this.connection;
      this.connection = null;
      if (stale) void stale.close().catch(() => undefined);
      this.connecting = Connection.open(this.uri).finally(() => {
        this.connecting = null;
      });
    }
    this.connection = await this.connecting;
    return this.connection;
  }

  /** The guest with that uuid, or null when libvirt has no such domain. */
  async getGuest(instanceUuid: string): Promise<Guest | null> {
    const conn = await this.conn();
    try {
      return new Guest(await conn.lookupDomainByUUID(instanceUuid));
    } catch (err) {
      if (hasCode(err, VIR_ERR_NO_DOMAIN)) return null;
      throw err;
    }
  }

  /** virDomainDefineXML: (re)defines the persistent configuration. */
  async writeInstanceConfig(xml: string): Promise<Guest> {
    const conn = await this.conn();
    return new Guest(await conn.defineDomainXML(xml));
  }

  async close(): Promise<void> {
    const conn = this.connection;
    this.connection = null;
    if (conn) await conn.close();
  }
}
