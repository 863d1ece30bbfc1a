/** The CRIU image codec: CRIT's decode, encode, info, show and x, in TypeScript. */
export type { CritJsonObject, CritJsonValue, DecodeOptions, ImageEntry, ImageJson } from './types.js';
export type { ImageSource } from './framing/byte-reader.js';
export { decodeImageStream, imageInfo, type ImageStream, type OpenOptions } from './decode/image-reader.js';
export { decodeImage, encodeImage, formatImageJson, parseImageJson, writeImage, type ImageEntrySource } from './image.js';
export { loadImageCatalog, type ImageCatalog } from './catalog.js';
export { IMG_COMMON, IMG_SERVICE } from './magic.js';
export {
  CorruptImageError,
  ImageDescriptorsNotFoundError,
  ImageReadError,
  ImageWriteError,
  InvalidImageJsonError,
  UnknownMagicError,
  UnsupportedImageError,
} from './errors.js';
export type { ExploreOptions } from './explore/checkpoint-dir.js';
export { explorePs, formatPs, type PsNode } from './explore/ps.js';
export { exploreFds, formatFds, type TaskFiles } from './explore/fds.js';
export { exploreMems, formatMems, type TaskMemory, type VmaInfo } from './explore/mems.js';
export { exploreRss, formatRss, type RssRange, type RssVma, type TaskRss } from './explore/rss.js';
export { formatImageJsonChunks } from './json-stream.js';
export { DUMP_STATS_FILE, RESTORE_STATS_FILE, readDumpStatistics, readRestoreStatistics, type DumpStatistics, type RestoreStatistics } from './stats.js';
