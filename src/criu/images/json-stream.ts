/**
 * The JSON text `crit decode` prints, written entry by entry: the same bytes as formatImageJson,
 * but an image with many or large entries (pagemaps, pipe data) never sits in memory as one string.
 */
import type { ImageEntrySource } from './image.js';
import { formatPythonJson, pythonJsonString } from './text/python-json.js';
import type { ImageEntry, ImageJson } from './types.js';

const PRETTY_INDENT = 4;

function entriesOf(image: ImageJson | ImageEntrySource): Iterable<ImageEntry> | AsyncIterable<ImageEntry> {
  return Symbol.asyncIterator in image ? (image as AsyncIterable<ImageEntry>) : image.entries;
}

/**
 * Chunks whose concatenation is formatImageJson(image, options). With `pretty`, an entry is
 * formatted at depth 0 and each of its lines indented two levels: JSON strings hold no newline,
 * so this is exactly Python's json.dump with indent=4.
 */
export async function* formatImageJsonChunks(image: ImageJson | ImageEntrySource, options: { readonly pretty?: boolean } = {}): AsyncGenerator<string> {
  const magic = `${pythonJsonString('magic')}: ${pythonJsonString(image.magic)}`;
  const entriesKey = pythonJsonString('entries');
  if (!options.pretty) {
    let first = true;
    for await (const entry of entriesOf(image)) {
      yield `${first ? `{${magic}, ${entriesKey}: [` : ', '}${formatPythonJson(entry)}`;
      first = false;
    }
    yield first ? `{${magic}, ${entriesKey}: []}` : ']}';
    return;
  }
  const pad = ' '.repeat(PRETTY_INDENT);
  const head = `{\n${pad}${magic},\n${pad}${entriesKey}: `;
  let first = true;
  for await (const entry of entriesOf(image)) {
    const text = formatPythonJson(entry, PRETTY_INDENT).replaceAll('\n', `\n${pad}${pad}`);
    yield `${first ? `${head}[\n` : ',\n'}${pad}${pad}${text}`;
    first = false;
  }
  yield first ? `${head}[]\n}` : `\n${pad}]\n}`;
}
