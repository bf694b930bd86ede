#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { ImageSource } from '../host/image-source.js';
import { powerOnWorkflowId } from '../workflows/definitions.js';
import { ApiError, ComputeApi } from './api-client.js';
import { stackSettings } from './stack-env.js';
import { watchPowerOn } from './watch.js';

// computectl: the operator's CLI. It uses only the HTTP API and the Temporal
// client, so anything it shows a script can get too. Exit codes: 0 ok,
// 1 the operation failed, 2 bad usage or input, 3 not found, 4 conflict.

const USAGE = `usage: computectl <command> [options]
  register --name N --image ID [--vcpus 1] [--ram 64] [--disk 1] [--port PORT_ID]... [--host H] [--id UUID]
  start ID [--watch]       power on (os-start), optionally following it
  watch ID                 follow a running power-on step by step
  show ID                  the server record
  actions ID [REQUEST_ID]  instance actions (and one action's events)
  event ID NAME [--tag PORT] [--status completed|failed|in-progress]
                           send an external event (as Neutron does)
  image-create --id ID --name N --file QCOW2   add an image to the local image service
options: --json (machine-readable output)`;

class UsageError extends Error {}

const settings = stackSettings();
const json = process.argv.includes('--json');
const out = (human: string, data: unknown) => console.log(json ? JSON.stringify(data, null, 2) : human);

function need(name: string): string {
  const v = settings[name];
  if (!v) throw new UsageError(`${name} is not set (run 'make up' or export it)`);
  return v;
}

const api = () => new ComputeApi(need('NT_API_URL'), need('NT_API_TOKEN'));

async function temporal(): Promise<Client> {
  const connection = await Connection.connect({ address: need('NT_TEMPORAL_ADDRESS') });
  return new Client({ connection, namespace: settings.NT_TEMPORAL_NAMESPACE ?? 'default' });
}

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name}: expected a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

async function watch(id: string): Promise<number> {
  const client = await temporal();
  try {
    if (!json) console.log(`power-on ${powerOnWorkflowId(id)}`);
    const p = await watchPowerOn(client, id, (s) => !json && console.log(s));
    const server = (await api().show(id)).server;
    out(
      `${p.outcome === 'succeeded' ? 'ACTIVE' : 'FAILED'}: ${server.name} (${id}) vm_state=${server['OS-EXT-STS:vm_state']} ` +
        `power_state=${server['OS-EXT-STS:power_state']}${server.fault ? `\nfault: ${server.fault.message}` : ''}`,
      { progress: p, server },
    );
    return p.outcome === 'succeeded' ? 0 : 1;
  } finally {
    await client.connection.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      watch: { type: 'boolean' },
      name: { type: 'string' },
      image: { type: 'string' },
      vcpus: { type: 'string' },
      ram: { type: 'string' },
      disk: { type: 'string' },
      port: { type: 'string', multiple: true },
      host: { type: 'string' },
      id: { type: 'string' },
      file: { type: 'string' },
      tag: { type: 'string' },
      status: { type: 'string' },
    },
  });
  const [command, ...args] = positionals;
  switch (command) {
    case 'register': {
      if (!values.name || !values.image) throw new UsageError('register needs --name and --image');
      const server = {
        ...(values.id ? { id: values.id } : {}),
        name: values.name,
        imageRef: values.image,
        flavor: {
          vcpus: int('vcpus', values.vcpus, 1),
          ram: int('ram', values.ram, 64),
          disk: int('disk', values.disk, 1),
        },
        networks: (values.port ?? []).map((port) => ({ port })),
        ...(values.host ? { 'OS-EXT-SRV-ATTR:host': values.host } : {}),
      };
      const res = await api().register(server);
      out(res.server.id, res);
      return 0;
    }
    case 'start': {
      const id = args[0];
      if (!id) throw new UsageError('start needs a server id');
      await api().start(id);
      if (values.watch) return watch(id);
      out(`power-on of ${id} accepted`, { id, accepted: true });
      return 0;
    }
    case 'watch': {
      if (!args[0]) throw new UsageError('watch needs a server id');
      return watch(args[0]);
    }
    case 'show': {
      if (!args[0]) throw new UsageError('show needs a server id');
      const { server } = await api().show(args[0]);
      out(
        `${server.name} ${server.id}\n  status ${server.status}  vm_state ${server['OS-EXT-STS:vm_state']}  ` +
          `task_state ${server['OS-EXT-STS:task_state']}  power_state ${server['OS-EXT-STS:power_state']}  ` +
          `host ${server['OS-EXT-SRV-ATTR:host']}${server.fault ? `\n  fault ${server.fault.message}` : ''}`,
        { server },
      );
      return 0;
    }
    case 'actions': {
      if (!args[0]) throw new UsageError('actions needs a server id');
      if (args[1]) {
        const { instanceAction: a } = await api().action(args[0], args[1]);
        const rows = a.events.map(
          (e: { event: string; result: string; start_time: string; finish_time: string }) =>
            `  ${e.event.padEnd(28)} ${String(e.result).padEnd(8)} ${e.start_time} -> ${e.finish_time}`,
        );
        out([`${a.action} ${a.request_id} ${a.start_time}`, ...rows].join('\n'), { instanceAction: a });
      } else {
        const res = await api().actions(args[0]);
        out(
          res.instanceActions
            .map(
              (a: { action: string; request_id: string; start_time: string }) =>
                `${a.action} ${a.request_id} ${a.start_time}`,
            )
            .join('\n'),
          res,
        );
      }
      return 0;
    }
    case 'event': {
      const [id, name] = args;
      if (!id || !name) throw new UsageError('event needs a server id and an event name');
      const res = await api().externalEvents([
        { server_uuid: id, name, ...(values.tag ? { tag: values.tag } : {}), status: values.status ?? 'completed' },
      ]);
      const ev = res.events[0];
      out(`${ev.name} ${ev.tag ?? ''} -> ${ev.code} ${ev.status}`, res);
      return ev.code === 200 ? 0 : 1;
    }
    case 'image-create': {
      if (!values.id || !values.name || !values.file)
        throw new UsageError('image-create needs --id, --name and --file');
      const meta = await new ImageSource(need('NT_IMAGES_PATH')).create(values.id, values.name, values.file);
      out(meta.id, meta);
      return 0;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'no command given');
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`computectl: ${(err as Error).message}\n${USAGE}`);
      process.exit(2);
    }
    if (err instanceof ApiError) {
      console.error(`computectl: ${err.message} (HTTP ${err.status})`);
      process.exit(err.status === 404 ? 3 : err.status === 409 ? 4 : err.status === 400 ? 2 : 1);
    }
    console.error(`computectl: ${(err as Error).message ?? err}`);
    process.exit(1);
  },
);
