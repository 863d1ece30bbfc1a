/**
 * A throwaway PKI for the migration tests, made with the openssl command: a self-signed CA and
 * leaf certificates it signs. A migration's two hosts are each both client and server (the command
 * channel one way, CRIU's page server the other, with the same files), so every leaf is good for
 * serverAuth and clientAuth. Keys are EC P-256: Node's TLS and GnuTLS (CRIU's TLS) both take them,
 * and they are made in milliseconds where RSA keys take a noticeable part of a test's time.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TlsFiles } from '../../src/runtime/migration/channel.js';

export interface Pki {
  /** The CA's certificate (PEM): what both ends pass as --tls-ca. */
  readonly ca: string;
  readonly caKey: string;
  /** A certificate for commonName signed by this CA, with its key and the CA's certificate. */
  issue(commonName: string, options?: { readonly ip?: string }): Promise<TlsFiles>;
}

const hostname = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

async function openssl(args: readonly string[]): Promise<void> {
  await execa('openssl', args, { stdin: 'ignore' });
}

/** A fresh P-256 key, readable by its owner only. */
async function newKey(file: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  await chmod(file, 0o600);
}

/** A random positive serial, so that no serial file has to be kept between issues. */
function serial(): string {
  return `0x${randomBytes(16)
    .toString('hex')
    .replace(/^[89a-f]/, '1')}`;
}

/**
 * A CA named name in dir. The extensions are written out in a file of our own rather than taken
 * from openssl.cnf, whose defaults differ between distributions.
 */
export async function makePki(dir: string, name: string): Promise<Pki> {
  const base = path.join(dir, name.replace(/[^A-Za-z0-9_.-]/g, '_'));
  const ca = `${base}-ca.crt`;
  const caKey = `${base}-ca.key`;
  const caConfig = `${base}-ca.cnf`;
  await writeFile(
    caConfig,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      'x509_extensions = ca',
      '[dn]',
      `CN = ${name} test CA`,
      '[ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await newKey(caKey);
  await openssl(['req', '-x509', '-new', '-config', caConfig, '-key', caKey, '-sha256', '-days', '30', '-set_serial', serial(), '-out', ca]);
  await chmod(ca, 0o600);

  let issued = 0;
  return {
    ca,
    caKey,
    async issue(commonName, options = {}) {
      // The index keeps two certificates for one name apart.
      const leaf = `${base}-${issued++}-${commonName.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
      const cert = `${leaf}.crt`;
      const key = `${leaf}.key`;
      const request = `${leaf}.csr`;
      const extensions = `${leaf}.cnf`;
      const altNames = [...(hostname.test(commonName) ? [`DNS:${commonName}`] : []), ...(options.ip ? [`IP:${options.ip}`] : [])];
      await writeFile(
        extensions,
        [
          '[leaf]',
          'basicConstraints = critical, CA:FALSE',
          'keyUsage = critical, digitalSignature, keyEncipherment',
          'extendedKeyUsage = serverAuth, clientAuth',
          'subjectKeyIdentifier = hash',
          'authorityKeyIdentifier = keyid',
          ...(altNames.length > 0 ? [`subjectAltName = ${altNames.join(', ')}`] : []),
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      await newKey(key);
      await openssl(['req', '-new', '-key', key, '-subj', `/CN=${commonName.replace(/[/\\]/g, '_')}`, '-out', request]);
      await chmod(request, 0o600);
      await openssl([
        'x509',
        '-req',
        '-in',
        request,
        '-CA',
        ca,
        '-CAkey',
        caKey,
        '-set_serial',
        serial(),
        '-days',
        '30',
        '-sha256',
        '-extfile',
        extensions,
        '-extensions',
        'leaf',
        '-out',
        cert,
      ]);
      await chmod(cert, 0o600);
      return { cert, key, ca };
    },
  };
}
