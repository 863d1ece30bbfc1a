/**
 * Operations cut short: a checkpoint or a restore whose process died half-way (SIGKILL, a crash,
 * the OOM killer), and a monitor that died. A checkpoint and a restore each keep a note in the
 * container's state directory (operation.json) for as long as they work: written under the
 * container's lock, removed before the lock is let go. The next command to take the lock and
 * find a note knows its writer died, and `recoverInterrupted` brings the container to one
 * consistent state:
 *
 *   checkpoint  CRIU, which outlives its caller, is waited for; the freezer is thawed; a dump CRIU
 *               finished (stats-dump is the last file it writes) is put in place and recorded, as
 *               the checkpoint would have done; an unfinished one goes, the last good one stays
 *   restore     the half-restored tasks (and CRIU, which restores from inside their cgroup) are
 *               killed and the restore's mounts undone: the container stays checkpointed, its
 *               images untouched, ready for the next restore
 *   monitor     a running container whose monitor died: its standbys and their mounts go; an init
 *               that ended meanwhile is recorded stopped, so `runtime restore` brings back its
 *               last checkpoint (and `runtime reset` its snapshots)
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeContext } from './context.js';
import { ContainerBusyError, describeError } from './errors.js';
import { initOf, monitorOf, type ContainerRecord, type ProcessIdentity } from './state/record.js';
import { writePrivateFile } from './checkpoint-metadata.js';
import { readEffectiveSpec } from './effective-bundle.js';
import { restrictImageFiles } from './userns.js';
import { unmountStorage } from './storage.js';
import { writeImageDigests } from './image-digests.js';
import { recordCheckpoint } from './checkpoint-record.js';
import { checkJson } from './json.js';
import { s, type Infer } from '../system/schema.js';
import { unmountAll, unmountBelow } from '../rootfs/layers.js';
import { TMPFS_STAGING } from '../rootfs/tmpfs-copy.js';

const NOTE_FILE = 'operation.json';
/** CRIU writes this last, and only when the dump succeeded (criu/cr-dump.c, cr_dump_finish). */
const DUMP_FINISHED_FILE = 'stats-dump';
/** How long a command waits for the CRIU of a checkpoint whose caller died. */
const CRIU_WAIT_MS = 60_000;

const identity = s.object({ pid: s.number().int().positive(), startTime: s.string().regex(/^\d+$/) });
const noteSchema = s.discriminatedUnion('kind', [
  s.object({
    kind: s.literal('checkpoint'),
    holder: identity,
    started: s.string(),
    /** managed and pre-dump are written aside (writePath) and moved to finalPath; directory in place. */
    target: s.enum(['managed', 'directory', 'snapshot', 'pre-dump', 'migration'] as const),
    writePath: s.string(),
    finalPath: s.string(),
    cgroupPath: s.string(),
    criu: identity.optional(),
    /** Left by a command that gave up on it, alive or not (keep): the next command finishes it. */
    abandoned: s.boolean().optional(),
    /** A named snapshot's name and the layers below its rootfs copy, to finish it with. */
    snapshot: s.object({ name: s.string(), lowers: s.array(s.string()) }).optional(),
  }),
  s.object({
    kind: s.literal('restore'),
    holder: identity,
    started: s.string(),
    cgroupPath: s.string(),
    criuRoot: s.string(),
    /** CRIU's working directory: the work path, else the images (it mounts its cgroup yard there while it restores). */
    imagePath: s.string().optional(),
    /** The restore mounted the container's rootfs from its storage driver. */
    storageMounted: s.boolean().optional(),
  }),
]);

type Note = Infer<typeof noteSchema>;
export type CheckpointNote = Extract<Note, { kind: 'checkpoint' }>;
export type RestoreNote = Extract<Note, { kind: 'restore' }>;
type NoteFields = Omit<CheckpointNote, 'holder' | 'started' | 'criu' | 'abandoned'> | Omit<RestoreNote, 'holder' | 'started' | 'storageMounted'>;

/** A checkpoint or restore at work: its note, until `end`. */
export class Operation {
  private kept = false;

  private constructor(
    private readonly file: string,
    private note: Note,
  ) {}

  /** Writes the note (the caller holds the container's lock). */
  static async begin(context: RuntimeContext, id: string, fields: NoteFields): Promise<Operation> {
    const note = { ...fields, holder: await context.processes.self(), started: new Date().toISOString() } as Note;
    const operation = new Operation(path.join(context.store.paths(id).dir, NOTE_FILE), note);
    await operation.write();
    return operation;
  }

  /** Notes CRIU's process, which a command finding the note waits for. */
  async criuStarted(context: RuntimeContext, pid: number): Promise<void> {
    const criu = await context.processes.identify(pid);
    if (this.note.kind !== 'checkpoint' || !criu) return;
    this.note = { ...this.note, criu };
    await this.write();
  }

  /** Notes that the restore mounted the rootfs from its storage driver (recovery unmounts it). */
  async storageMounted(): Promise<void> {
    if (this.note.kind !== 'restore') return;
    this.note = { ...this.note, storageMounted: true };
    await this.write();
  }

  /**
   * The note stays for the next command (a dump CRIU finished, whose images or record could not
   * be put in place: the next command finishes it, as after a command that died).
   */
  async keep(): Promise<void> {
    this.kept = true;
    if (this.note.kind !== 'checkpoint') return;
    this.note = { ...this.note, abandoned: true };
    await this.write();
  }

  /** The operation is over, done or undone: the note goes, unless kept. */
  async end(): Promise<void> {
    if (!this.kept) await rm(this.file, { force: true });
  }

  /** Written aside and renamed: a command that dies mid-write leaves the note it had. */
  private async write(): Promise<void> {
    const temporary = `${this.file}.new`;
    await writePrivateFile(temporary, `${JSON.stringify(this.note, null, 2)}\n`);
    await rename(temporary, this.file);
  }
}

/** Runs fn as an operation: the note is written first and removed after, whatever fn's outcome. */
export async function asOperation<T>(context: RuntimeContext, id: string, fields: NoteFields, fn: (operation: Operation) => Promise<T>): Promise<T> {
  const operation = await Operation.begin(context, id, fields);
  try {
    return await fn(operation);
  } finally {
    await operation.end();
  }
}

/**
 * Called under the container's lock with the record read under it: what an interrupted
 * checkpoint or restore, or a dead monitor, left is put right, and the record as it then is
 * returned. Costs one stat when nothing was interrupted.
 */
export async function recoverInterrupted(context: RuntimeContext, record: ContainerRecord): Promise<ContainerRecord> {
  const file = path.join(context.store.paths(record.id).dir, NOTE_FILE);
  let current = record;
  if (existsSync(file)) {
    const note = readNote(context, file);
    if (note) {
      if (!(note.kind === 'checkpoint' && note.abandoned) && (await context.processes.isAlive(note.holder))) {
        throw new ContainerBusyError(record.id, `a ${note.kind} (pid ${note.holder.pid}) is still at work on it`);
      }
      context.logger.warn(`recovering the interrupted ${note.kind} of ${record.id}`, { started: note.started, holder: note.holder.pid });
      try {
        current = note.kind === 'checkpoint' ? await recoverCheckpoint(context, current, note) : await recoverRestore(context, current, note);
      } catch (error) {
        if (error instanceof ContainerBusyError) throw error;
        // Never again: a recovery that fails must not block every later command (delete -f
        // among them). The note is kept aside for whoever looks into it.
        context.logger.error(`could not recover the interrupted ${note.kind} of ${record.id}`, { error: describeError(error), note: `${file}.failed` });
        await rename(file, `${file}.failed`).catch(() => undefined);
        current = await context.store.load(record.id);
      }
    }
    await rm(file, { force: true });
  }
  return recoverDeadMonitor(context, current);
}

function readNote(context: RuntimeContext, file: string): Note | undefined {
  const checked = checkJson(noteSchema, readFileSync(file, 'utf8'), 'the operation note');
  if (checked.ok) return checked.value as Note;
  context.logger.warn('an unreadable operation note was removed', { file, reason: checked.reason });
  return undefined;
}

async function recoverCheckpoint(context: RuntimeContext, record: ContainerRecord, note: CheckpointNote): Promise<ContainerRecord> {
  const { cgroups, processes, store, logger } = context;
  if (note.criu) await waitForCriu(context, record.id, note.criu);
  // CRIU froze the tree through the freezer; one that died before it thawed left it frozen.
  await cgroups.setFrozen(note.cgroupPath, false).catch((error: unknown) => logger.warn('could not thaw the container', { error: describeError(error) }));

  // Where the images are: still aside, or moved into place already.
  const images = existsSync(note.writePath) ? note.writePath : note.finalPath;
  const finished = dumpFinishedSince(images, Date.parse(note.started));
  const init = initOf(record);
  const leftRunning = init !== undefined && (await processes.isAlive(init));
  if (note.target === 'migration') {
    // A migration's images are its own: gone either way. A dump CRIU finished means the
    // destination restored the container and CRIU ended it here.
    await rm(note.writePath, { recursive: true, force: true });
    if (finished)
      logger.warn(
        `${record.id} was moved to another host by a migration whose command died; \`runtime delete ${record.id}\` removes what is left of it here`,
      );
    return record;
  }
  if (!finished) {
    // An unfinished dump goes (a managed one, or a snapshot); the last good one stays.
    if (note.target === 'snapshot') await rm(path.dirname(note.writePath), { recursive: true, force: true });
    else if (note.writePath !== note.finalPath) await rm(note.writePath, { recursive: true, force: true });
    return record;
  }
  const { spec } = await readEffectiveSpec(store.paths(record.id).effectiveBundle);
  await restrictImageFiles(images, spec).catch((error: unknown) => logger.warn("could not make the images root's alone", { error: describeError(error) }));
  await writeImageDigests(images).catch((error: unknown) => logger.warn('could not write the digests of the images', { error: describeError(error) }));
  if (note.target === 'snapshot') {
    // CRIU got past its post-dump notification only once the rootfs copy was made: it is whole.
    if (!note.snapshot) {
      await rm(path.dirname(note.writePath), { recursive: true, force: true });
      return record;
    }
    const { snapshots } = context;
    const building = snapshots.building(record.id, note.snapshot.name);
    const snapshot = await snapshots.describe(record.id, note.snapshot.name, building, note.snapshot.lowers, leftRunning);
    await snapshots.commit(record.id, building, snapshot);
    logger.warn(`the snapshot ${note.snapshot.name} of ${record.id} was finished by CRIU after its command died: kept`);
    return recorded(context, record, { imagePath: note.finalPath, leftRunning, snapshot });
  }
  if (images !== note.finalPath) {
    await rm(note.finalPath, { recursive: true, force: true });
    await rename(images, note.finalPath);
  }
  if (note.target === 'pre-dump') return record;
  logger.warn(`the checkpoint of ${record.id} was finished by CRIU after its command died: recorded`, { imagePath: note.finalPath, leftRunning });
  return recorded(context, record, { imagePath: note.finalPath, leftRunning, snapshot: undefined });
}

/** The record after the dump, as the checkpoint would have written it, while it is the dump's. */
function recorded(
  context: RuntimeContext,
  record: ContainerRecord,
  done: Parameters<typeof recordCheckpoint>[2],
): Promise<ContainerRecord> | ContainerRecord {
  return record.status === 'running' || record.status === 'stopped' ? recordCheckpoint(context, record, done) : record;
}

/** True when CRIU finished a dump into dir after `since` (a stats-dump of an older dump is not). */
function dumpFinishedSince(dir: string, since: number): boolean {
  try {
    return statSync(path.join(dir, DUMP_FINISHED_FILE)).mtimeMs >= since;
  } catch {
    return false;
  }
}

async function waitForCriu(context: RuntimeContext, id: string, criu: ProcessIdentity): Promise<void> {
  const deadline = Date.now() + CRIU_WAIT_MS;
  while (await context.processes.isAlive(criu)) {
    if (Date.now() > deadline) throw new ContainerBusyError(id, `the CRIU (pid ${criu.pid}) of a checkpoint whose command died is still dumping it`);
    await sleep(50);
  }
}

async function recoverRestore(context: RuntimeContext, record: ContainerRecord, note: RestoreNote): Promise<ContainerRecord> {
  const init = initOf(record);
  // Recorded running: the restore was done, its caller died after (a dead monitor, below).
  if (!init || !(await context.processes.isAlive(init))) await context.cgroups.killTree(note.cgroupPath);
  await unmountAll(context.mounts, note.criuRoot).catch(() => undefined);
  await rmdir(note.criuRoot).catch(() => undefined);
  if (note.imagePath) await removeCgroupYards(context, note.imagePath);
  await removeTmpfsStaging(context, record.id);
  if (note.storageMounted && record.storage && record.status !== 'running') await unmountStorage(context, record.storage);
  return record;
}

/**
 * A running container whose monitor died: the standbys it was keeping go, and an init that ended
 * is recorded stopped (no one else reaps it or records its end). An init that lives runs on, with
 * no parent of the runtime's: `runtime checkpoint` and then `runtime restore` give it a new one.
 */
async function recoverDeadMonitor(context: RuntimeContext, record: ContainerRecord): Promise<ContainerRecord> {
  const monitor = monitorOf(record);
  if (!monitor || (await context.processes.isAlive(monitor))) return record;
  if (record.cgroupBase) {
    const instances = path.join(context.store.paths(record.id).dir, 'instances');
    for (const name of await readdir(instances).catch(() => [] as string[])) {
      if (!/^\d+$/.test(name) || Number(name) === record.instance) continue;
      context.logger.warn(`removing standby ${name} of ${record.id}, whose monitor died`);
      await discardInstance(context, path.join(instances, name), `${record.cgroupBase}/${name}`);
    }
    await removeTmpfsStaging(context, record.id);
  }
  const init = initOf(record);
  if (init && !(await context.processes.isAlive(init))) {
    context.logger.warn(`${record.id}'s monitor died and its init ended: recorded stopped`);
    return context.store.commit(record, { kind: 'exited', exit: { time: new Date().toISOString() } });
  }
  return record;
}

/** A reset instance no monitor minds any more (a dead one's): its processes, then the rest. */
export async function discardInstance(context: RuntimeContext, dir: string, cgroupPath: string): Promise<void> {
  await context.cgroups.killTree(cgroupPath).catch(() => undefined);
  await removeInstance(context, dir, cgroupPath);
}

/** A reset instance's mounts, directory and cgroup, once its processes are gone. */
export async function removeInstance(context: RuntimeContext, dir: string, cgroupPath: string): Promise<void> {
  const { mounts, cgroups } = context;
  // CRIU restores an instance from its criu-work directory, where it puts its cgroup yard.
  await removeCgroupYards(context, path.join(dir, 'criu-work'));
  for (const target of ['criu-root', 'images', 'rootfs']) await unmountAll(mounts, path.join(dir, target)).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  await cgroups.removeTree(cgroupPath);
}

/**
 * CRIU's cgroup yard: while it restores, CRIU mounts a tmpfs named so in its working directory
 * (the work directory when it has one, else the images directory) with the cgroup hierarchies under it, and takes it away when it ends. A CRIU
 * killed meanwhile leaves it mounted on the host, where it pins the images directory.
 */
const CGROUP_YARD = /^\.criu\.cgyard\.[A-Za-z0-9]{6}$/;

/** The cgroup yards a killed CRIU left in imagePath: unmounted (with what is under them) and removed. */
export async function removeCgroupYards(context: RuntimeContext, imagePath: string): Promise<void> {
  for (const name of await readdir(imagePath).catch(() => [] as string[])) {
    if (!CGROUP_YARD.test(name)) continue;
    const yard = path.join(imagePath, name);
    try {
      await unmountAll(context.mounts, yard);
      await rmdir(yard);
      context.logger.info('removed the cgroup yard of a CRIU that was killed while it restored', { path: yard });
    } catch (error) {
      context.logger.warn('could not remove the cgroup yard of a CRIU killed while it restored', { path: yard, error: describeError(error) });
    }
  }
}

/**
 * The start of the name of a restore's tmpfs staging directory (tmpfsStagingDirectory adds six
 * characters): the container's id and its state root's, as two state roots may hold one id.
 */
export function tmpfsStagingPrefix(context: RuntimeContext, id: string): string {
  return `${id}-${createHash('sha256').update(context.store.root).digest('hex').slice(0, 8)}`;
}

/**
 * A dead restore's tmpfs copies: unmounted, and their directories removed one by one, never
 * recursively (a copy still mounted there would be a restored container's own /dev or /dev/shm).
 */
async function removeTmpfsStaging(context: RuntimeContext, id: string, root = TMPFS_STAGING): Promise<void> {
  const prefix = `${tmpfsStagingPrefix(context, id)}-`;
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) || name.length !== prefix.length + 6) continue;
    const dir = path.join(root, name);
    await unmountBelow(context.mounts, dir).catch(() => undefined);
    for (const entry of await readdir(dir).catch(() => [] as string[])) await rmdir(path.join(dir, entry)).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }
}
