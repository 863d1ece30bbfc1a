/**
 * The OCI runtime-spec config.json (v1.0 to v1.2), as far as a Linux runtime reads it.
 *
 * Every object is loose: OCI lets tools add fields (and newer spec versions add more), so keys this
 * runtime does not know are kept as they are, and writing the parsed spec back out loses nothing.
 * Only the fields this runtime acts on are typed; everything else rides along untouched.
 */
import { posix } from 'node:path';
import { z } from 'zod';

const absolutePath = z.string().refine((p) => posix.isAbsolute(p), 'must be an absolute path');

const uint32 = z.number().int().min(0).max(0xffff_ffff);

/**
 * Integers wider than a double can hold exactly (RLIM_INFINITY is 2^64-1) still parse: JSON.parse
 * has already rounded them, and z.number().int() would reject anything past 2^53.
 */
const wideInteger = z.number().refine((n) => Number.isInteger(n), 'must be an integer');
const wideUnsigned = wideInteger.refine((n) => n >= 0, 'must not be negative');

const stringList = z.array(z.string());

/** One range of an id mapping, as in /proc/<pid>/uid_map. */
export const IdMappingSchema = z.looseObject({
  containerID: uint32,
  hostID: uint32,
  size: uint32,
});

export const UserSchema = z.looseObject({
  uid: uint32,
  gid: uint32,
  umask: uint32.optional(),
  additionalGids: z.array(uint32).optional(),
});

export const CapabilitiesSchema = z.looseObject({
  bounding: stringList.optional(),
  effective: stringList.optional(),
  inheritable: stringList.optional(),
  permitted: stringList.optional(),
  ambient: stringList.optional(),
});

export const RlimitSchema = z.looseObject({
  type: z.string().min(1, 'must not be empty'),
  hard: wideUnsigned,
  soft: wideUnsigned,
});

export const ProcessSchema = z.looseObject({
  terminal: z.boolean().optional(),
  consoleSize: z.looseObject({ height: uint32, width: uint32 }).optional(),
  user: UserSchema,
  args: z.array(z.string()).min(1, 'must not be empty'),
  env: stringList.optional(),
  cwd: absolutePath,
  capabilities: CapabilitiesSchema.optional(),
  rlimits: z.array(RlimitSchema).optional(),
  noNewPrivileges: z.boolean().optional(),
  apparmorProfile: z.string().optional(),
  selinuxLabel: z.string().optional(),
  oomScoreAdj: z.number().int().optional(),
});

export const RootSchema = z.looseObject({
  path: z.string().min(1, 'must not be empty'),
  readonly: z.boolean().optional(),
});

export const MountSchema = z.looseObject({
  // The spec (1.1+) still tolerates relative destinations on Linux, read as relative to "/", and
  // runc only warns about them; this runtime rejects them so a typo cannot land somewhere surprising.
  destination: absolutePath,
  type: z.string().optional(),
  source: z.string().optional(),
  options: stringList.optional(),
  uidMappings: z.array(IdMappingSchema).optional(),
  gidMappings: z.array(IdMappingSchema).optional(),
});

export const HookSchema = z.looseObject({
  // The spec extends execv(3): the path MUST be absolute, and a timeout MUST be greater than zero.
  path: absolutePath,
  args: stringList.optional(),
  env: stringList.optional(),
  timeout: z.number().int().min(1, 'must be greater than zero').optional(),
});

const hookList = z.array(HookSchema).optional();

export const HooksSchema = z.looseObject({
  /** Deprecated in spec 1.0.2 in favour of createRuntime, createContainer and startContainer. */
  prestart: hookList,
  createRuntime: hookList,
  createContainer: hookList,
  startContainer: hookList,
  poststart: hookList,
  poststop: hookList,
});

export const namespaceTypes = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'] as const;

export const NamespaceTypeSchema = z.enum(namespaceTypes);

export const LinuxNamespaceSchema = z.looseObject({
  type: NamespaceTypeSchema,
  /** Join this namespace instead of creating one; absolute in the runtime's mount namespace. */
  path: absolutePath.optional(),
});

export const LinuxDeviceSchema = z
  .looseObject({
    path: absolutePath,
    type: z.enum(['c', 'b', 'u', 'p']),
    major: wideInteger.optional(),
    minor: wideInteger.optional(),
    fileMode: uint32.optional(),
    uid: uint32.optional(),
    gid: uint32.optional(),
  })
  .superRefine((device, ctx) => {
    // Only a fifo has no device number.
    if (device.type === 'p') return;
    for (const key of ['major', 'minor'] as const) {
      if (device[key] === undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `is required for a device of type "${device.type}"` });
      }
    }
  });

/**
 * Cgroup limits. Validated as objects only: the cgroup managers own their meaning, and the set of
 * controllers keeps growing, so unknown sub-keys are kept for them.
 */
export const LinuxResourcesSchema = z.looseObject({
  devices: z.array(z.looseObject({})).optional(),
  memory: z.looseObject({}).optional(),
  cpu: z.looseObject({}).optional(),
  pids: z.looseObject({}).optional(),
  blockIO: z.looseObject({}).optional(),
  hugepageLimits: z.array(z.looseObject({})).optional(),
  network: z.looseObject({}).optional(),
  rdma: z.record(z.string(), z.looseObject({})).optional(),
  unified: z.record(z.string(), z.string()).optional(),
});

/** The values runc accepts for rootfsPropagation (libcontainer/specconv, mountPropagationMapping). */
export const rootfsPropagations = ['', 'private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable'] as const;

export const LinuxSchema = z.looseObject({
  namespaces: z
    .array(LinuxNamespaceSchema)
    .superRefine((namespaces, ctx) => {
      // config-linux.md: a namespace type given twice MUST be an error.
      const seen = new Set<string>();
      namespaces.forEach((ns, i) => {
        if (seen.has(ns.type)) {
          ctx.addIssue({ code: 'custom', path: [i, 'type'], message: `namespace "${ns.type}" is listed more than once` });
        }
        seen.add(ns.type);
      });
    })
    .optional(),
  uidMappings: z.array(IdMappingSchema).optional(),
  gidMappings: z.array(IdMappingSchema).optional(),
  devices: z.array(LinuxDeviceSchema).optional(),
  cgroupsPath: z.string().optional(),
  resources: LinuxResourcesSchema.optional(),
  maskedPaths: stringList.optional(),
  readonlyPaths: stringList.optional(),
  mountLabel: z.string().optional(),
  sysctl: z.record(z.string(), z.string()).optional(),
  seccomp: z.looseObject({}).optional(),
  rootfsPropagation: z.enum(rootfsPropagations).optional(),
  intelRdt: z.looseObject({}).optional(),
  personality: z.looseObject({ domain: z.string(), flags: stringList.optional() }).optional(),
});

export const SpecSchema = z.looseObject({
  ociVersion: z.string().min(1, 'must not be empty'),
  // The spec makes process and root optional (process is needed only to start), but runc refuses a
  // bundle without them and so does this Linux runtime.
  process: ProcessSchema,
  root: RootSchema,
  hostname: z.string().optional(),
  domainname: z.string().optional(),
  mounts: z.array(MountSchema).optional(),
  hooks: HooksSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  linux: LinuxSchema.optional(),
});

export type Spec = z.infer<typeof SpecSchema>;
export type Process = z.infer<typeof ProcessSchema>;
export type Root = z.infer<typeof RootSchema>;
export type Mount = z.infer<typeof MountSchema>;
export type Hook = z.infer<typeof HookSchema>;
export type Hooks = z.infer<typeof HooksSchema>;
export type Linux = z.infer<typeof LinuxSchema>;
export type LinuxNamespace = z.infer<typeof LinuxNamespaceSchema>;
export type NamespaceType = z.infer<typeof NamespaceTypeSchema>;
export type LinuxDevice = z.infer<typeof LinuxDeviceSchema>;
export type LinuxResources = z.infer<typeof LinuxResourcesSchema>;
export type IdMapping = z.infer<typeof IdMappingSchema>;
