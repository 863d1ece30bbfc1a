#!/usr/bin/env node
// The `runtime` command: runs the compiled CLI (npm install builds it through `prepare`).
import { main } from '../dist/src/runtime/cli/main.js';

const code = await main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
// Containers run in the foreground keep handles open until they end; by now they have.
process.exitCode = code;
if (process.stdin.isPaused?.() === false) process.stdin.pause();
process.exit(code);
