/**
 * One size: every tool starts its own copy of the same bundle, then each round checkpoints and
 * restores each container once, the tools' order rotating per round to spread drift and noise.
 * Checkpoints go to a fresh image directory each round, removed once restored.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { BenchError } from './exec.js';
import type { Cleanup } from './cleanup.js';
import type { Tool, ToolName } from './tools.js';
import { clearReady, imageSize, isAlive, makeBundle, readPidFile, residentMiB, verifyMemory, waitReady, type ImageSize } from './workload.js';

export interface SizeRun {
  readonly sizeMiB: number;
  readonly tools: readonly Tool[];
  /** Measured rounds; warm-up rounds come first and are not kept. */
  readonly rounds: number;
  readonly warmupRounds: number;
  readonly repoRoot: string;
  readonly memhog: string;
  /** Bundles and pid files. */
  readonly workDir: string;
  /** Checkpoint images. */
  readonly imagesDir: string;
  readonly cleanup: Cleanup;
  /** Checked before every operation. */
  readonly abort: AbortSignal;
}

export interface Sample {
  readonly sizeMiB: number;
  readonly tool: ToolName;
  readonly round: number;
  readonly checkpointMs: number;
  readonly restoreMs: number;
  readonly image: ImageSize;
  readonly residentBeforeMiB: number;
  readonly residentAfterMiB: number;
}

interface Contender {
  readonly tool: Tool;
  readonly id: string;
  readonly bundle: string;
  readonly pidFile: string;
  pid: number;
}

/** Accept a little less than N MiB: the page count, not the last KiB, is the point. */
function holds(mib: number, sizeMiB: number): boolean {
  return mib >= sizeMiB * 0.98;
}

export async function benchmarkSize(run: SizeRun): Promise<Sample[]> {
  const { sizeMiB } = run;
  const contenders: Contender[] = [];
  for (const tool of run.tools) {
    const bundle = path.join(run.workDir, `${tool.name}-${sizeMiB}`);
    await makeBundle(run.repoRoot, bundle, run.memhog, sizeMiB);
    const id = `bench-${process.pid}-${tool.name}-${sizeMiB}`;
    const contender: Contender = { tool, id, bundle, pidFile: path.join(run.workDir, `${id}.pid`), pid: 0 };
    run.cleanup.add(`delete ${tool.name} container ${id}`, async () => {
      await tool.remove(id);
      if (contender.pid > 0 && isAlive(contender.pid)) process.kill(contender.pid, 'SIGKILL');
    });
    await clearReady(bundle);
    run.abort.throwIfAborted();
    await tool.start(id, bundle, contender.pidFile);
    contender.pid = await readPidFile(contender.pidFile);
    await waitReady(bundle, sizeMiB);
    contenders.push(contender);
  }

  const samples: Sample[] = [];
  const total = run.warmupRounds + run.rounds;
  for (let round = 0; round < total; round++) {
    const shift = round % contenders.length;
    const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
    const progress: string[] = [];
    for (const contender of order) {
      const sample = await checkpointAndRestore(run, contender, round);
      if (round >= run.warmupRounds) samples.push(sample);
      progress.push(`${contender.tool.name} ${Math.round(sample.checkpointMs)}/${Math.round(sample.restoreMs)}`);
    }
    const label = round < run.warmupRounds ? 'warm-up' : `round ${round - run.warmupRounds + 1}/${run.rounds}`;
    process.stderr.write(`  ${sizeMiB} MiB ${label}: checkpoint/restore ms: ${progress.join(', ')}\n`);
  }

  // Restored processes, not just restored pids: every byte as memhog wrote it, after all rounds.
  for (const contender of contenders) await verifyMemory(contender.bundle, contender.pid, sizeMiB);
  for (const contender of contenders) {
    await contender.tool.remove(contender.id);
    await rm(contender.bundle, { recursive: true, force: true });
  }
  return samples;
}

/** `round` counts from the first warm-up round; the sample's, from the first measured one. */
async function checkpointAndRestore(run: SizeRun, contender: Contender, round: number): Promise<Sample> {
  const { tool } = contender;
  const { sizeMiB } = run;
  const where = `${tool.name} container ${contender.id}`;
  const residentBeforeMiB = await residentMiB(contender.pid);
  if (!holds(residentBeforeMiB, sizeMiB)) {
    throw new BenchError('BENCH_WORKLOAD', `${where} holds ${residentBeforeMiB.toFixed(1)} MiB before the checkpoint, expected ${sizeMiB} MiB`);
  }

  run.abort.throwIfAborted();
  const imagePath = path.join(run.imagesDir, `${tool.name}-${sizeMiB}-${round}`);
  const checkpointMs = await tool.checkpoint(contender.id, imagePath);
  if (isAlive(contender.pid)) throw new BenchError('BENCH_STILL_RUNNING', `${where}: pid ${contender.pid} still runs after the checkpoint`);
  const image = await imageSize(imagePath);
  if (!holds(image.pagesMiB, sizeMiB)) {
    throw new BenchError('BENCH_IMAGE_SIZE', `${where}: the image holds ${image.pagesMiB.toFixed(1)} MiB of pages, expected ${sizeMiB} MiB`);
  }

  await rm(contender.pidFile, { force: true });
  run.abort.throwIfAborted();
  const restoreMs = await tool.restore(contender.id, imagePath, contender.bundle, contender.pidFile);
  contender.pid = await readPidFile(contender.pidFile);
  const residentAfterMiB = await residentMiB(contender.pid);
  if (!holds(residentAfterMiB, sizeMiB)) {
    throw new BenchError('BENCH_RESTORE', `${where} holds ${residentAfterMiB.toFixed(1)} MiB after the restore, expected ${sizeMiB} MiB`);
  }
  await rm(imagePath, { recursive: true, force: true });
  return { sizeMiB, tool: tool.name, round: round - run.warmupRounds, checkpointMs, restoreMs, image, residentBeforeMiB, residentAfterMiB };
}
