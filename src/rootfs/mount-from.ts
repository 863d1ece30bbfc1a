/**
 * Child entry point for mount(2) with relative paths: chdir into the directory the plan names,
 * then mount. This is moby's "docker-mountfrom" and containers/storage's "storage-mountfrom"
 * re-exec (overlay2/mount.go, overlay/mount.go): the kernel resolves relative lowerdir/upperdir
 * paths against the caller's cwd, and changing the runtime's own cwd would race with everything
 * else it does (and process.chdir() is refused in worker threads). A short child owns its cwd.
 *
 * Protocol: one JSON MountFromRequest on stdin; exit 0 when mounted, else exit 1 with a
 * MountFromFailure as JSON on stdout. Directories the parent opened arrive as fds 3, 4, ...
 */
import { mount } from '../system/libc.js';
import { SystemCallError } from '../system/errors.js';

export interface MountFromRequest {
  readonly cwd: string;
  readonly source: string;
  readonly target: string;
  readonly fsType: string;
  readonly flags: number;
  readonly data: string;
}

export interface MountFromFailure {
  readonly errno?: number;
  readonly message: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function fail(failure: MountFromFailure): never {
  process.stdout.write(JSON.stringify(failure));
  process.exit(1);
}

async function main(): Promise<void> {
  let request: MountFromRequest;
  try {
    request = JSON.parse(await readStdin()) as MountFromRequest;
  } catch (error) {
    fail({ message: `bad request: ${String(error)}` });
  }
  try {
    process.chdir(request.cwd);
  } catch (error) {
    fail({ message: `chdir ${request.cwd}: ${(error as Error).message}` });
  }
  try {
    mount(request.source, request.target, request.fsType, request.flags, request.data);
  } catch (error) {
    if (error instanceof SystemCallError) fail({ errno: error.errno, message: error.message });
    fail({ message: String(error) });
  }
  process.exit(0);
}

await main();
