/** A TCP port that was free a moment ago: the kernel's pick for port 0, released again. */
import net from 'node:net';

/** host: the address to bind (default: every address). */
export async function freePort(host?: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
