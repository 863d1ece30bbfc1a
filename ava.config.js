// Tests are TypeScript compiled by tsc (decorator metadata needs it), run from dist/.
// AVA_COMPILE=false runs the already-compiled tree (for example after `npm run build`).
export default {
  files: ['test/**/*.test.ts'],
  typescript: {
    rewritePaths: { 'src/': 'dist/src/', 'test/': 'dist/test/', 'bench/': 'dist/bench/' },
    compile: process.env.AVA_COMPILE === 'false' ? false : 'tsc',
  },
  timeout: '3m',
  concurrency: 2,
  workerThreads: false,
  verbose: true,
};
