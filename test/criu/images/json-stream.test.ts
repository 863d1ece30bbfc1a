import test from 'ava';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage, decodeImageStream, formatImageJson, formatImageJsonChunks } from '../../../src/criu/images/index.js';
import type { ImageJson } from '../../../src/criu/images/index.js';
import { storedImagesDir } from './helpers.js';

async function joined(chunks: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const chunk of chunks) text += chunk;
  return text;
}

test("streamed JSON is formatImageJson's text, plain and pretty, for hand-made images", async (t) => {
  const images: ImageJson[] = [
    { magic: 'PSTREE', entries: [] },
    { magic: 'PSTREE', entries: [{ pid: 1, ppid: 0, threads: [1] }] },
    {
      magic: 'PSTREE',
      entries: [
        { pid: 1, ppid: 0, threads: [1] },
        { pid: 2, ppid: 1, threads: [], x: { y: [1, { z: 'a\nb' }] } },
      ],
    },
  ];
  for (const image of images) {
    for (const pretty of [false, true]) t.is(await joined(formatImageJsonChunks(image, { pretty })), formatImageJson(image, { pretty }));
  }
});

test("streamed JSON of the stored images is formatImageJson's text", async (t) => {
  let catalog = true;
  try {
    await decodeImage(path.join(storedImagesDir, 'pstree.img'));
  } catch {
    catalog = false;
  }
  if (!catalog) {
    t.pass('pycriu is not installed');
    return;
  }
  const files = (await readdir(storedImagesDir)).filter((name) => name !== 'pages-1.img');
  for (const name of files) {
    const file = path.join(storedImagesDir, name);
    for (const pretty of [false, true]) {
      const whole = formatImageJson(await decodeImage(file, { pretty }), { pretty });
      t.is(await joined(formatImageJsonChunks(await decodeImageStream(file, { pretty }), { pretty })), whole, `${name} pretty=${pretty}`);
    }
  }
});
