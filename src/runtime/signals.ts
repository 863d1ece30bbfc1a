/** Signal names and numbers, as `runtime kill` takes them (KILL, SIGKILL, 9). */
import { constants } from 'node:os';
import { UsageError } from './errors.js';

// Some numbers have two names (SIGABRT/SIGIOT, SIGIO/SIGPOLL): the first, usual one is kept.
const byNumber = new Map<number, string>();
for (const [name, number] of Object.entries(constants.signals)) if (!byNumber.has(number)) byNumber.set(number, name);

export function signalName(signal: number): string {
  return byNumber.get(signal) ?? `SIG${signal}`;
}

export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    if (byNumber.has(number)) return number;
  } else {
    const name = (text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`) as keyof typeof constants.signals;
    const number = constants.signals[name];
    if (number !== undefined) return number;
  }
  throw new UsageError(`unknown signal ${JSON.stringify(text)}`, 'give a name such as TERM, SIGKILL or a number such as 9');
}

/** The shell's convention for a process killed by a signal. */
export function exitCodeForSignal(signal: number): number {
  return 128 + signal;
}

/** Where an image's StopSignal is kept in config.json's annotations (image-spec.ts writes it, kill reads it). */
export const stopSignalAnnotation = 'org.opencontainers.image.stopSignal';
