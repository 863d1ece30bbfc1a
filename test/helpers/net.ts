/** A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released). */
import { freePort as anyFreePort } from '../../src/system/free-port.js';

export async function freePort(): Promise<number> {
  return anyFreePort('127.0.0.1');
}
