/**
 * The record after a dump, as the checkpoint records it, and as the next command does for a dump
 * CRIU finished after its command died (interrupted.ts).
 */
import type { RuntimeContext } from './context.js';
import type { ContainerRecord, RunningRecord, StoppedRecord } from './state/record.js';
import type { SnapshotInfo } from './snapshots/store.js';

/**
 * Its last checkpoint, and checkpointed unless the tree was left running. A stopped record is a
 * dump whose tree's end was recorded before the dump was (its command died in between).
 */
export async function recordCheckpoint(
  context: RuntimeContext,
  record: RunningRecord | StoppedRecord,
  done: { readonly imagePath: string; readonly leftRunning: boolean; readonly snapshot: SnapshotInfo | undefined },
): Promise<ContainerRecord> {
  // A named snapshot is reached by name (reset), never as the bare checkpoint to restore.
  const lastCheckpoint = done.snapshot
    ? record.lastCheckpoint
    : { imagePath: done.imagePath, time: new Date().toISOString(), leftRunning: done.leftRunning };
  if (done.leftRunning) return context.store.commit(record, { kind: 'amended', changes: lastCheckpoint ? { lastCheckpoint } : {} });
  return context.store.commit(record, { kind: 'checkpointed', ...(lastCheckpoint ? { lastCheckpoint } : {}) });
}
