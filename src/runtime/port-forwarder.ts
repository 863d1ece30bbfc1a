/**
 * Published ports (`-p [HOST_IP:]HOST_PORT:CONTAINER_PORT`, docker's syntax): the container's
 * init parent (its monitor, or the foreground CLI) listens on the host address and forwards each
 * connection into the network namespace of the container's current instance, to the container
 * port on its loopback.
 *
 * Why a forwarder in the parent, and not veth and NAT: every reset restores a new instance with a
 * network namespace of its own (CRIU restores the snapshot's), and a standby waits beside the
 * running instance, so two instances hold the same container port at once; they cannot share one
 * namespace. The parent outlives the instances, so the host address stays the same across resets:
 * at a reset it switches to the new instance's namespace and closes the old one's connections.
 * A socket is made in the instance's namespace by entering it for the socket(2) call only
 * (system/libc.ts tcpSocketInNetns); no helper process, no iptables rule, nothing left on the
 * host when the parent exits.
 */
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from './logger.js';
import { formatPort, PortInUseError, type PublishedPort } from './ports.js';
import { AF_INET, tcpSocketInNetns } from '../system/libc.js';

/** Where connections go: one instance's network namespace. */
interface Target {
  readonly netnsFd: number;
  readonly connections: Set<net.Socket>;
}

/**
 * Listens on the published host ports and forwards every connection to the current instance.
 * Until an instance is set, and after it is cleared, connections are closed at once.
 */
export class PortForwarder {
  private readonly servers: net.Server[] = [];
  private hostNetnsFd: number | undefined;
  private target: Target | undefined;

  constructor(
    private readonly ports: readonly PublishedPort[],
    private readonly logger: Logger,
  ) {}

  /** Binds every host port; throws PortInUseError (having bound none) when one cannot be bound. */
  async listen(): Promise<void> {
    if (this.ports.length === 0) return;
    this.hostNetnsFd ??= openSync('/proc/self/ns/net', 'r');
    try {
      for (const port of this.ports) {
        const server = net.createServer((socket) => this.forward(socket, port));
        await new Promise<void>((resolve, reject) => {
          server.once('error', (error) => reject(new PortInUseError(port, error)));
          server.listen({ host: port.hostIp, port: port.hostPort, exclusive: true }, () => resolve());
        });
        server.on('error', (error) => this.logger.warn(`published port ${formatPort(port)}`, { error: error.message }));
        this.servers.push(server);
      }
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /**
   * New connections go to the network namespace of pid (an instance's init); the previous
   * instance's connections are closed. Without a pid, connections are refused until the next.
   */
  switchTo(pid: number | undefined): void {
    if (this.ports.length === 0) return;
    const previous = this.target;
    this.target = pid === undefined ? undefined : { netnsFd: openSync(`/proc/${pid}/ns/net`, 'r'), connections: new Set() };
    if (previous) this.release(previous);
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const servers = this.servers.splice(0);
    // A server's close calls back once its last connection has ended: they are ended first, or
    // a client that stays connected would hold the parent (and the host port) for good.
    const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    if (this.target) this.release(this.target);
    this.target = undefined;
    await Promise.all(closed);
    if (this.hostNetnsFd !== undefined) closeSync(this.hostNetnsFd);
    this.hostNetnsFd = undefined;
  }

  private release(target: Target): void {
    for (const socket of target.connections) socket.destroy();
    target.connections.clear();
    closeSync(target.netnsFd);
  }

  private forward(client: net.Socket, port: PublishedPort): void {
    const target = this.target;
    if (!target || this.hostNetnsFd === undefined) {
      client.destroy();
      return;
    }
    let upstream: net.Socket;
    try {
      upstream = new net.Socket({ fd: tcpSocketInNetns(target.netnsFd, this.hostNetnsFd, AF_INET) });
    } catch (error) {
      this.logger.warn(`published port ${formatPort(port)}: no socket in the container`, { error: (error as Error).message });
      client.destroy();
      return;
    }
    target.connections.add(client);
    target.connections.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      target.connections.delete(client);
      target.connections.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    upstream.connect({ port: port.containerPort, host: '127.0.0.1' });
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
