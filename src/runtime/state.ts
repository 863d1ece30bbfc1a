/** `runtime state <id>` and `runtime list`: the OCI state of containers, checked against /proc. */
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import type { OciState } from './oci/index.js';
import type { ContainerRecord } from './state/record.js';

export const OCI_VERSION = '1.0.2';

/** What reading states takes: the store and /proc (the CLI makes just these, see cli/local.ts). */
export type StateServices = Pick<RuntimeContext, 'store' | 'processes'>;

/** The OCI state of one container. A running record whose init is gone reads as stopped. */
export async function state(context: StateServices, id: string): Promise<OciState> {
  return toOciState(context, await context.store.load(validateId(id)));
}

/** The state as `runtime state` prints it (the native front prints it as the monitor renders it). */
export function formatState(state: OciState): string {
  return JSON.stringify(state, null, 2);
}

export async function list(context: StateServices): Promise<OciState[]> {
  return (await listRecords(context)).map((row) => row.state);
}

/** The record as a `list` row needs it: the OCI state plus when it was created. */
export async function listRecords(context: StateServices): Promise<{ state: OciState; record: ContainerRecord }[]> {
  const rows: { state: OciState; record: ContainerRecord }[] = [];
  for (const id of await context.store.ids()) {
    const record = await context.store.load(id).catch(() => undefined);
    if (record) rows.push({ state: await toOciState(context, record), record });
  }
  return rows;
}

async function toOciState(context: StateServices, record: ContainerRecord): Promise<OciState> {
  const alive = record.status === 'running' && (await context.processes.isAlive(record.init));
  const status = record.status === 'running' && !alive ? 'stopped' : record.status;
  return {
    ociVersion: OCI_VERSION,
    id: record.id,
    status,
    ...(status === 'running' && record.status === 'running' ? { pid: record.init.pid } : {}),
    bundle: record.bundle,
    annotations: { ...record.annotations },
  } as OciState;
}
