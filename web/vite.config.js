// The console is built into the Python package, which serves it at /ui (docs/ui.md).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/ui/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../src/lowart/ui/dist', import.meta.url)),
    emptyOutDir: true,
    // The CSP forbids inline script and style: every asset is a file of its own.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
    reportCompressedSize: false,
  },
  server: { proxy: { '/v1': 'http://127.0.0.1:8080', '/admin': 'http://127.0.0.1:8080' } },
});
