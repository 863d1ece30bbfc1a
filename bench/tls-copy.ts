/**
 * The migration benchmark's baseline copy: a directory as a tar over mutual TLS (the runtime's
 * channel, the same certificates), as `scp -r` or podman's export over ssh moves a checkpoint.
 *
 *   node dist/bench/tls-copy.js receive HOST PORT DIR CERT KEY CA   (prints "listening", takes one copy)
 *   node dist/bench/tls-copy.js send HOST PORT DIR CERT KEY CA
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connectChannel, listenChannel } from '../src/runtime/migration/channel.js';

const [mode, host, portText, dir, cert, key, ca] = process.argv.slice(2);
const tls = { cert: cert!, key: key!, ca: ca! };
const port = Number(portText);

if (mode === 'receive') {
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const listener = await listenChannel({ host: host!, port }, tls, async (channel) => {
    const tar = spawn('tar', ['--extract', '--file=-', '--numeric-owner', '--same-owner', '-C', dir!], { stdio: ['pipe', 'inherit', 'inherit'] });
    const exited = once(tar, 'exit');
    for await (const chunk of channel.receiveStream({ timeoutMs: 600_000 })) if (!tar.stdin.write(chunk)) await once(tar.stdin, 'drain');
    tar.stdin.end();
    await exited;
    done();
  });
  process.stdout.write('listening\n');
  await finished;
  // One copy, then out: the sender has nothing more to say.
  await Promise.race([listener.close(), new Promise((resolve) => setTimeout(resolve, 200))]);
  process.exit(0);
} else {
  const channel = await connectChannel({ host: host!, port }, tls, { timeoutMs: 30_000 });
  const tar = spawn('tar', ['--create', '--file=-', '--numeric-owner', '--sparse', '-C', dir!, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await channel.sendStream(tar.stdout as AsyncIterable<Buffer>);
  // The copy is done when the receiving side has unpacked it and exited: the benchmark waits for both.
  await channel.close();
}
