#!/usr/bin/env node
/**
 * The layering of src/, checked on every `npm test` (`npm run lint`): no import cycles and no import
 * into a layer above.
 *
 *   runtime/          may import anything
 *   criu/, rootfs/    must not import runtime/
 *   system/           must not import runtime/, criu/ or rootfs/ (it is the floor of all three)
 *   files directly in src/ (index.ts) may import anything
 *
 * A cycle is a strongly connected component of more than one file. Every kind of import counts:
 * `import type`, `export ... from`, `import('...')` in code or in a type, side-effect imports. A
 * type-only cycle costs nothing at run time, but it still ties the files' layers together, so it is a
 * cycle here (rule 7 of /work/shared/STYLE.md). For each cycle one concrete loop is printed, with the
 * line of each import in it (`a.ts:7 -> b.ts:12 -> a.ts`: line 7 of a.ts names b.ts, line 12 of b.ts
 * names a.ts; the specifier's line, not the `import` keyword's), so the edge to cut can be found
 * without drawing the graph.
 *
 * Plain JavaScript on purpose: scripts/ is outside tsconfig.json, and this must run before anything
 * is compiled. The specifiers come from the TypeScript compiler's own pre-processor (no new
 * dependency, and no regex that misses a multi-line `import type {` or a comment that looks like one).
 *
 * usage: node scripts/check-imports.mjs [ROOT]   ROOT defaults to this repository's src/.
 * Prints one line per violation and exits 1; prints one summary line and exits 0 when clean; exits 2
 * when ROOT is not a directory. Paths are relative to the working directory (the repository under
 * `npm run`).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Which top-level folders each folder of ROOT must not import. A folder not listed may import anything. */
const forbiddenLayers = new Map([
  ['criu', ['runtime']],
  ['rootfs', ['runtime']],
  ['system', ['runtime', 'criu', 'rootfs']],
]);

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function main(argv) {
  if (argv.length > 1 || argv[0] === '-h' || argv[0] === '--help') {
    process.stderr.write('usage: node scripts/check-imports.mjs [ROOT]\n');
    return 2;
  }
  const root = path.resolve(argv[0] ?? path.join(repoRoot, 'src'));
  if (!isDirectory(root)) {
    process.stderr.write(`check-imports: ${show(root)} is not a directory\n`);
    return 2;
  }

  const files = listTypeScript(root);
  const known = new Set(files);
  const graph = new Map(files.map((file) => [file, importsOf(file, known)]));

  const upward = [];
  for (const [file, imports] of graph) {
    const layer = layerOf(root, file);
    const forbidden = forbiddenLayers.get(layer) ?? [];
    for (const [target, line] of imports) {
      const targetLayer = layerOf(root, target);
      if (forbidden.includes(targetLayer)) {
        upward.push(`upward: ${show(file)}:${line} imports ${show(target)} (${layer}/ must not import from ${targetLayer}/)`);
      }
    }
  }

  const cycles = stronglyConnected(graph)
    .filter((component) => component.length > 1)
    .map((component) => describeCycle(graph, component));

  for (const line of [...cycles, ...upward]) process.stdout.write(`${line}\n`);
  if (cycles.length === 0 && upward.length === 0) {
    process.stdout.write(`imports: ${files.length} files, no cycles, no upward imports\n`);
    return 0;
  }
  process.stdout.write(`imports: ${files.length} files, ${count(cycles.length, 'cycle')}, ${count(upward.length, 'upward import')}\n`);
  return 1;
}

function isDirectory(dir) {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Every .ts file under dir (declaration files too), sorted so the output is stable. */
function listTypeScript(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name))
    .sort();
}

/** The files of `known` that file imports, each with the line of its first import (1-based). */
function importsOf(file, known) {
  const text = readFileSync(file, 'utf8');
  const { importedFiles } = ts.preProcessFile(text, true, true);
  const imports = new Map();
  for (const { fileName, pos } of importedFiles) {
    const target = resolveRelative(file, fileName, known);
    if (target !== undefined && target !== file && !imports.has(target)) imports.set(target, lineAt(text, pos));
  }
  return new Map([...imports].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The .ts file a relative specifier names, as nodenext resolves it: `./x.js` is `./x.ts`, a directory is its
 * index.ts. Package imports and anything that is not a .ts file under ROOT (JSON, ../package.json) are no
 * edge of this graph.
 */
function resolveRelative(from, specifier, known) {
  if (!(specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../'))) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  const stem = base.replace(/\.js$/, '');
  const candidates = [`${stem}.ts`, `${stem}.d.ts`, base, `${base}.ts`, `${base}.d.ts`, path.join(base, 'index.ts'), path.join(base, 'index.d.ts')];
  return candidates.find((candidate) => known.has(candidate));
}

function lineAt(text, pos) {
  let line = 1;
  for (let i = 0; i < pos; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The top-level folder of ROOT a file sits in; '' for a file directly in ROOT. */
function layerOf(root, file) {
  const parts = path.relative(root, file).split(path.sep);
  return parts.length > 1 ? parts[0] : '';
}

/** Tarjan's strongly connected components, iterative so a deep import chain cannot overflow the stack. */
function stronglyConnected(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  let next = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work = [{ node: start, targets: [...graph.get(start).keys()], at: 0 }];
    index.set(start, next);
    low.set(start, next);
    next++;
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      if (frame.at < frame.targets.length) {
        const target = frame.targets[frame.at++];
        if (!index.has(target)) {
          index.set(target, next);
          low.set(target, next);
          next++;
          stack.push(target);
          onStack.add(target);
          work.push({ node: target, targets: [...graph.get(target).keys()], at: 0 });
        } else if (onStack.has(target)) {
          low.set(frame.node, Math.min(low.get(frame.node), index.get(target)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent), low.get(frame.node)));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        components.push(component.sort());
      }
    }
  }
  return components.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/**
 * One line for a component: the shortest loop through its first file (breadth-first inside the component),
 * each step with the line of the import, then the component's other files when the loop does not cover it.
 */
function describeCycle(graph, component) {
  const members = new Set(component);
  const start = component[0];
  const cameFrom = new Map([[start, undefined]]);
  const queue = [start];
  let last;
  search: for (let i = 0; i < queue.length; i++) {
    for (const target of graph.get(queue[i]).keys()) {
      if (target === start) {
        last = queue[i];
        break search;
      }
      if (members.has(target) && !cameFrom.has(target)) {
        cameFrom.set(target, queue[i]);
        queue.push(target);
      }
    }
  }
  const loop = [];
  for (let node = last; node !== undefined; node = cameFrom.get(node)) loop.unshift(node);
  const steps = loop.map((node, i) => `${show(node)}:${graph.get(node).get(loop[i + 1] ?? start)}`);
  const rest = component.filter((node) => !loop.includes(node));
  const tail = rest.length > 0 ? ` (the same component also holds ${rest.map(show).join(', ')})` : '';
  return `cycle: ${[...steps, show(start)].join(' -> ')}${tail}`;
}

function show(file) {
  const relative = path.relative(process.cwd(), file);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function count(n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

process.exitCode = main(process.argv.slice(2));
