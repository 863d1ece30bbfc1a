/**
 * The OCI state, what `runtime state <id>` prints (runtime-spec runtime.md, "State").
 */
import { posix } from 'node:path';
import { z } from 'zod';

/**
 * The four statuses of the spec, plus `checkpointed`: the spec lets a runtime add its own, and this
 * one reports a container whose processes were dumped by CRIU and then stopped (as runc does after
 * `checkpoint` without --leave-running).
 */
export const ociStatuses = ['creating', 'created', 'running', 'stopped', 'checkpointed'] as const;

export const OciStatusSchema = z.enum(ociStatuses);

export type OciStatus = z.infer<typeof OciStatusSchema>;

export const OciStateSchema = z
  .looseObject({
    ociVersion: z.string().min(1, 'must not be empty'),
    id: z.string().min(1, 'must not be empty'),
    status: OciStatusSchema,
    pid: z.number().int().min(1).optional(),
    /** Absolute path of the bundle directory. */
    bundle: z.string().refine((p) => posix.isAbsolute(p), 'must be an absolute path'),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .superRefine((state, ctx) => {
    // runtime.md: pid is REQUIRED on Linux when the status is created or running.
    if ((state.status === 'created' || state.status === 'running') && state.pid === undefined) {
      ctx.addIssue({ code: 'custom', path: ['pid'], message: `is required when the status is "${state.status}"` });
    }
  });

export type OciState = z.infer<typeof OciStateSchema>;
