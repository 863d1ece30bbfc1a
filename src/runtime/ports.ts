/**
 * Published ports (`-p [HOST_IP:]HOST_PORT:CONTAINER_PORT`, docker's syntax): what a container
 * publishes, parsed and checked. The forwarding is port-forwarder.ts.
 */
import net from 'node:net';
import { RuntimeError, UsageError } from './errors.js';

export interface PublishedPort {
  /** The host address to listen on ("0.0.0.0" for every IPv4 address, "::" for every address). */
  readonly hostIp: string;
  readonly hostPort: number;
  /** The port the container listens on, inside its own network namespace. */
  readonly containerPort: number;
}

export class PortInUseError extends RuntimeError {
  readonly code = 'PORT_IN_USE' as const;
  constructor(
    readonly port: PublishedPort,
    cause: unknown,
  ) {
    super(`cannot publish ${formatPort(port)}: ${describeListenError(cause)}`, {
      cause,
      hint: 'choose another host port (-p HOST_PORT:CONTAINER_PORT), or stop what holds it (`ss -ltnp`)',
    });
  }
}

function describeListenError(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return 'the host port is in use';
  if (code === 'EADDRNOTAVAIL') return "the host address is not one of this host's";
  if (code === 'EACCES') return 'permission denied';
  return cause instanceof Error ? cause.message : String(cause);
}

export function formatPort(port: PublishedPort): string {
  const ip = port.hostIp.includes(':') ? `[${port.hostIp}]` : port.hostIp;
  return `${ip}:${port.hostPort}->${port.containerPort}/tcp`;
}

function parsePortNumber(text: string, what: string, value: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new UsageError(`invalid ${what} in -p ${JSON.stringify(value)}`, 'ports are numbers from 1 to 65535: -p [HOST_IP:]HOST_PORT:CONTAINER_PORT');
  }
  return Number(text);
}

/**
 * Parses docker's `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp]`; an IPv6 host address goes in
 * brackets (`[::1]:5432:5432`). Without an address the port is published on every IPv4 address.
 */
export function parsePublish(value: string): PublishedPort {
  const usage = 'use -p [HOST_IP:]HOST_PORT:CONTAINER_PORT, for example -p 127.0.0.1:15432:5432';
  let spec = value.trim();
  const protocol = /\/(\w+)$/.exec(spec);
  if (protocol) {
    if (protocol[1] !== 'tcp') throw new UsageError(`only TCP ports can be published: ${JSON.stringify(value)}`, usage);
    spec = spec.slice(0, protocol.index);
  }
  let hostIp = '0.0.0.0';
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(spec);
  if (v6) {
    hostIp = v6[1]!;
    spec = v6[2]!;
    if (net.isIPv6(hostIp) === false) throw new UsageError(`invalid host address in -p ${JSON.stringify(value)}`, usage);
  }
  const parts = spec.split(':');
  if (parts.length === 3 && !v6) {
    hostIp = parts.shift()!;
    if (net.isIPv4(hostIp) === false) throw new UsageError(`invalid host address in -p ${JSON.stringify(value)}`, usage);
  }
  if (parts.length !== 2) throw new UsageError(`invalid -p ${JSON.stringify(value)}`, usage);
  return { hostIp, hostPort: parsePortNumber(parts[0]!, 'host port', value), containerPort: parsePortNumber(parts[1]!, 'container port', value) };
}

/** Refuses two ports published on the same host address and port. */
export function checkPublished(ports: readonly PublishedPort[]): readonly PublishedPort[] {
  const seen = new Set<string>();
  for (const port of ports) {
    const key = `${port.hostIp}|${port.hostPort}`;
    if (seen.has(key)) throw new UsageError(`the host port ${port.hostPort} is published twice`, 'give each -p its own host port');
    seen.add(key);
  }
  return ports;
}
