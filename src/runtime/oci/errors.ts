import { RuntimeError, type RuntimeErrorOptions } from '../errors.js';

/** One thing wrong with a bundle: where (a JSON path such as `mounts[2].destination`) and why. */
export interface BundleProblem {
  /** JSON path of the offending field, or '' when the problem is the whole file. */
  readonly field: string;
  readonly reason: string;
}

const defaultHint = 'fix the field, or regenerate the file with `runc spec`';

/**
 * A bundle this runtime cannot use: the directory or its config.json is missing, unreadable, not
 * JSON, breaks the runtime spec, or names a rootfs that is not there.
 */
export class InvalidBundleError extends RuntimeError {
  readonly code = 'INVALID_BUNDLE' as const;
  /** Every problem found, the reported one first; schema checks can find several at once. */
  readonly problems: readonly BundleProblem[];

  constructor(
    /** Absolute path of the bundle's config.json (even when the bundle directory itself is missing). */
    readonly file: string,
    /** JSON path of the offending field, or '' for whole-file problems. */
    readonly field: string,
    readonly reason: string,
    options: RuntimeErrorOptions & { readonly others?: readonly BundleProblem[] } = {},
  ) {
    const others = options.others ?? [];
    const more = others.length === 0 ? '' : ` (and ${others.length} other problem${others.length === 1 ? '' : 's'})`;
    super(`invalid ${file}: ${field === '' ? '' : `${field}: `}${reason}${more}`, {
      cause: options.cause,
      hint: options.hint ?? defaultHint,
    });
    this.problems = [{ field, reason }, ...others];
  }
}
