/** --tls-cert, --tls-key and --tls-ca, which migrate and receive both take, and ADDR:PORT values. */
import path from 'node:path';
import { UsageError } from '../../errors.js';
import type { TlsFiles } from '../../../criu/options.js';

export const tlsFlags = {
  'tls-cert': { type: 'string', value: 'FILE', description: "this host's certificate (PEM), signed by the CA" },
  'tls-key': { type: 'string', value: 'FILE', description: 'its private key (PEM)' },
  'tls-ca': { type: 'string', value: 'FILE', description: 'the CA (PEM): a peer is accepted only with a certificate it signed' },
} as const;

export function tlsFiles(flags: { readonly 'tls-cert'?: string; readonly 'tls-key'?: string; readonly 'tls-ca'?: string }): TlsFiles {
  const { 'tls-cert': cert, 'tls-key': key, 'tls-ca': ca } = flags;
  if (!cert || !key || !ca) {
    throw new UsageError(
      '--tls-cert, --tls-key and --tls-ca are required: both channels are mutual TLS',
      "a certificate and key for this host, and the CA that signed both hosts' certificates",
    );
  }
  // Absolute: CRIU and its lazy-pages daemon read them from directories of their own.
  return { cert: path.resolve(cert), key: path.resolve(key), ca: path.resolve(ca) };
}

/** ADDR:PORT (an IPv6 address in brackets). */
export function hostPort(text: string, flag: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (colon <= 0 || !/^\d+$/.test(text.slice(colon + 1)) || port > 65535 || host === '') {
    throw new UsageError(`${flag} ${JSON.stringify(text)} is not ADDR:PORT`, `for example ${flag} 10.0.0.2:7700`);
  }
  return { host, port };
}
