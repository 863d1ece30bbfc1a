/**
 * The shapes shared by the image code: an image as its source describes it (manifest, config,
 * layers bottom first), the OCI image config's fields the runtime reads, and tar entries.
 * Image sources (source.ts, oci-layout.ts, docker-archive.ts) produce a ResolvedImage; the layer
 * store (store.ts) unpacks its layers with extract.ts; the runtime derives config.json from
 * its config (runtime/image-spec.ts).
 */

/** The OCI image config's `config` object (image-spec config.md), as Docker and Podman read it. */
export interface ImageRunConfig {
  readonly User?: string;
  readonly ExposedPorts?: Readonly<Record<string, object>>;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[] | null;
  readonly Cmd?: readonly string[] | null;
  readonly Volumes?: Readonly<Record<string, object>>;
  readonly WorkingDir?: string;
  readonly Labels?: Readonly<Record<string, string>>;
  readonly StopSignal?: string;
}

/** The OCI image config (application/vnd.oci.image.config.v1+json, or Docker's, which is the same). */
export interface ImageConfig {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly created?: string;
  readonly config?: ImageRunConfig;
  readonly rootfs: { readonly type: string; readonly diff_ids: readonly string[] };
}

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

/** One layer as the manifest describes it, readable from its source. */
export interface LayerBlob {
  /** The blob's digest as the manifest names it ("sha256:<64 hex>"). */
  readonly digest: string;
  readonly mediaType: string;
  readonly compression: 'gzip' | 'none';
  /** The blob's size in bytes, as the manifest gives it. */
  readonly size: number;
  /** The digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  readonly diffId: string;
  /**
   * The blob's bytes, as stored (compressed when it is). The stream checks the size and the
   * digest as it goes and fails at its end with DigestMismatchError when they differ.
   */
  open(): AsyncIterable<Buffer>;
}

export interface ResolvedImage {
  /** The reference as the user gave it ("oci:/path:tag", "docker-archive:/path.tar"). */
  readonly reference: string;
  /** The digest of the manifest picked (for a docker archive: of its manifest.json entry). */
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly config: ImageConfig;
  /** Bottom layer first. */
  readonly layers: readonly LayerBlob[];
  readonly platform: Platform;
}

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One member of a tar archive, with pax and GNU extensions applied. */
export interface TarEntry {
  /** The name as the archive gives it (pax `path` and GNU long names applied), not normalized. */
  readonly name: string;
  readonly type: TarEntryType;
  /** Permission bits with setuid, setgid and sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** The file's size in bytes (for a sparse file, its full size, holes included). */
  readonly size: number;
  /** Seconds since the epoch, fractional when pax gives it so. */
  readonly mtime: number;
  readonly atime?: number;
  /** A symbolic link's target, or a hard link's target member name; '' otherwise. */
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** Extended attributes (pax SCHILY.xattr.NAME), by name. */
  readonly xattrs: ReadonlyMap<string, Buffer>;
  /** For a sparse file: its data segments, in order; the body holds only their bytes. */
  readonly sparse?: readonly { readonly offset: number; readonly length: number }[];
}
