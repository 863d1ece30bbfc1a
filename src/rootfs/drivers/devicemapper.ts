/**
 * Docker's devicemapper (moby daemon/graphdriver/devmapper/deviceset.go and driver.go, last in
 * moby v24; pkg/devicemapper activateDevice), reproduced:
 *  - home is <storage root>/devicemapper; each device's metadata is metadata/<id> ("base" for the
 *    base device), JSON {"device_id","size","transaction_id","initialized","deleted"}; device ids
 *    above 0xffffff are invalid (loadMetadata ignores them). metadata/deviceset-metadata is
 *    {"next_device_id","BaseDeviceUUID","BaseDeviceFilesystem"}.
 *  - Names: the prefix is "docker-<major>:<minor>-<inode>" of home's stat(2) (Go's unix.Major/
 *    Minor of st_dev); the pool is "<prefix>-pool" unless dm.thinpooldev names one; the device is
 *    "<prefix>-<id>" at /dev/mapper/<name>.
 *  - Activation (activateDeviceIfNeeded; skipped when the device exists) loads the table
 *    "0 <size/512> thin /dev/mapper/<pool> <device_id>"; here as `dmsetup create <name> --table`.
 *  - A device marked "deleted" is refused ("marked for deferred deletion").
 *  - Mount (MountDevice): /dev/mapper/<name> on mnt/<id>, type from the filesystem probe (here:
 *    BaseDeviceFilesystem, which moby saves after probing), options "nouuid" for xfs plus
 *    dm.mountopt. Get then makes mnt/<id>/rootfs (the container's root) and an "id" file.
 *  - Unmount (UnmountDevice): umount2(MNT_DETACH), then deactivate (`dmsetup remove <name>`).
 *  - The pool itself is the daemon's: if it is not active, this driver refuses rather than
 *    building it from the loopback files as dockerd would.
 */
import path from 'node:path';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { BrokenLayoutError, DeviceStateError, LayerNotFoundError } from '../errors.js';
import { checkDeviceMapperSupport } from '../kernel-support.js';
import { PlannedMountDriver } from './base.js';
import { readTextOrUndefined, statOrUndefined, validateLayerId } from './layout.js';
import type { MountPlan, PlanOptions } from './types.js';

/** Device ids are 24 bits (the thin pool's limit). */
export const MAX_DEVICE_ID = 0xffffff;
export const DEVICESET_METADATA = 'deviceset-metadata';

export interface DeviceInfo {
  readonly deviceId: number;
  readonly size: number;
  readonly transactionId: number;
  readonly initialized: boolean;
  readonly deleted: boolean;
}

/** Go's unix.Major/Minor for a Linux dev_t. */
export function deviceMajorMinor(dev: bigint): [bigint, bigint] {
  const major = ((dev & 0x00000000000fff00n) >> 8n) | ((dev & 0xfffff00000000000n) >> 32n);
  const minor = (dev & 0x00000000000000ffn) | ((dev & 0x00000ffffff00000n) >> 12n);
  return [major, minor];
}

/** "docker-<major>:<minor>-<inode>" of the driver home, as initDevmapper computes it. */
export async function devicePrefix(home: string): Promise<string> {
  const st = await stat(home, { bigint: true });
  const [major, minor] = deviceMajorMinor(st.dev);
  return `docker-${major}:${minor}-${st.ino}`;
}

function parseJsonObject(file: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BrokenLayoutError('devicemapper', file, 'is not JSON', { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BrokenLayoutError('devicemapper', file, 'is not a JSON object');
  }
  return value as Record<string, unknown>;
}

function field<T>(file: string, object: Record<string, unknown>, name: string, check: (v: unknown) => v is T, what: string, fallback?: T): T {
  const value = object[name];
  if (value === undefined && fallback !== undefined) return fallback;
  if (!check(value)) throw new BrokenLayoutError('devicemapper', file, `"${name}" must be ${what}, found ${JSON.stringify(value)}`);
  return value;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

export function parseDeviceInfo(file: string, text: string): DeviceInfo {
  const object = parseJsonObject(file, text);
  const deviceId = field(file, object, 'device_id', isCount, 'a non-negative integer');
  if (deviceId > MAX_DEVICE_ID) throw new BrokenLayoutError('devicemapper', file, `device_id ${deviceId} is above the pool's limit ${MAX_DEVICE_ID}`);
  const size = field(file, object, 'size', isCount, 'a size in bytes');
  if (size < 512) throw new BrokenLayoutError('devicemapper', file, `size ${size} is less than one sector`);
  return {
    deviceId,
    size,
    transactionId: field(file, object, 'transaction_id', isCount, 'a non-negative integer'),
    initialized: field(file, object, 'initialized', isBool, 'true or false', false),
    deleted: field(file, object, 'deleted', isBool, 'true or false', false),
  };
}

/** BaseDeviceFilesystem of deviceset-metadata: moby only makes ext4 or xfs (dm.fs). */
export function parseBaseFilesystem(file: string, text: string): 'ext4' | 'xfs' {
  const object = parseJsonObject(file, text);
  const fs = object['BaseDeviceFilesystem'];
  if (fs !== 'ext4' && fs !== 'xfs') {
    throw new BrokenLayoutError('devicemapper', file, `BaseDeviceFilesystem is ${JSON.stringify(fs)}, not "ext4" or "xfs"`, {
      hint: 'dockerd records the filesystem of the base device here on start; start it once with this storage root so it does',
    });
  }
  return fs;
}

/** The pool device in the plan's activation table ("0 <sectors> thin <pool> <id>"). */
export function thinPoolOf(plan: MountPlan): string | undefined {
  for (const step of plan.steps) {
    if (step.kind !== 'command' || step.argv[0] !== 'dmsetup' || step.argv[1] !== 'create') continue;
    const table = step.argv[step.argv.indexOf('--table') + 1];
    return table?.split(' ')[3];
  }
  return undefined;
}

export class DeviceMapperDriver extends PlannedMountDriver {
  readonly name = 'devicemapper' as const;

  async plan(storageRoot: string, layerId: string, planOptions: PlanOptions = {}): Promise<MountPlan> {
    validateLayerId(layerId);
    const home = path.join(path.resolve(storageRoot), 'devicemapper');
    const metadataFile = path.join(home, 'metadata', layerId);
    const text = await readTextOrUndefined(metadataFile);
    if (text === undefined) {
      throw new LayerNotFoundError('devicemapper', layerId, metadataFile, {
        hint: 'Docker has no thin device for this id: check --layer (`docker inspect -f {{.GraphDriver.Data.DeviceName}}` shows the device)',
      });
    }
    const info = parseDeviceInfo(metadataFile, text);
    if (info.deleted) {
      throw new DeviceStateError(
        layerId,
        'has been marked for deferred deletion',
        "the engine is deleting this container's device; it cannot be restored from it",
      );
    }
    const setFile = path.join(home, 'metadata', DEVICESET_METADATA);
    const setText = await readTextOrUndefined(setFile);
    if (setText === undefined) {
      throw new BrokenLayoutError('devicemapper', setFile, 'is missing, so the filesystem of the devices is unknown', {
        hint: 'dockerd writes it on start; start it once with this storage root',
      });
    }
    const fsType = parseBaseFilesystem(setFile, setText);

    const prefix = await devicePrefix(home);
    const pool = planOptions.thinPoolDevice?.replace(/^\/dev\/mapper\//, '') ?? `${prefix}-pool`;
    const name = `${prefix}-${layerId}`;
    const device = `/dev/mapper/${name}`;
    const table = `0 ${Math.floor(info.size / 512)} thin /dev/mapper/${pool} ${info.deviceId}`;
    const target = path.join(home, 'mnt', layerId);
    return {
      driver: 'devicemapper',
      type: fsType,
      source: device,
      target,
      options: [...(fsType === 'xfs' ? ['nouuid'] : []), ...(planOptions.mountOptions ?? [])],
      steps: [
        {
          kind: 'command',
          phase: 'before-mount',
          description: `activate thin device ${info.deviceId} (${info.size} bytes, transaction ${info.transactionId}) of pool ${pool} as ${name}`,
          argv: ['dmsetup', 'create', name, '--table', table],
          skipIfExists: device,
        },
        {
          kind: 'command',
          phase: 'after-unmount',
          description: `deactivate ${name}`,
          argv: ['dmsetup', 'remove', name],
          onlyIfExists: device,
        },
      ],
      rootfs: path.join(target, 'rootfs'),
    };
  }

  async checkKernel(): Promise<void> {
    await checkDeviceMapperSupport(this.deps.kernel);
  }

  override async mount(plan: MountPlan): Promise<boolean> {
    await this.checkKernel();
    // The device needs its pool, and only dockerd builds the pool (from its loopback files or LVM).
    const poolDevice = thinPoolOf(plan);
    const { kernel } = this.deps;
    if (poolDevice !== undefined && !(await kernel.pathExists(plan.source)) && !(await kernel.pathExists(poolDevice))) {
      throw new DeviceStateError(
        path.basename(plan.target),
        `cannot be activated: its thin pool ${poolDevice} is not active`,
        'start dockerd once with this storage root (it activates the pool), or activate the pool with dmsetup/lvchange',
      );
    }
    return super.mount(plan);
  }

  protected override detachOnUnmount(): boolean {
    return true;
  }

  protected override async afterMount(plan: MountPlan): Promise<void> {
    // driver.go Get: the rootfs/ subfolder and an "id" file naming the layer.
    await mkdir(plan.rootfs, { recursive: true, mode: 0o755 });
    const idFile = path.join(plan.target, 'id');
    if ((await statOrUndefined(idFile)) === undefined) await writeFile(idFile, path.basename(plan.target), { mode: 0o600 });
  }
}
