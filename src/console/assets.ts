import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file the console serves, held in memory (they are few and small). */
export interface Asset {
  body: string;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The browser libraries, vendored through npm and served from node_modules as they were
 * published (no CDN: gateways often run where nothing can be fetched; no build step).
 * The page's import map names them.
 */
const VENDOR: Record<string, string> = {
  'preact.mjs': 'preact',
  'preact-hooks.mjs': 'preact/hooks',
  'htm.mjs': 'htm',
};

export interface ConsoleAssets {
  page: Asset;
  /** The page's Content-Security-Policy: scripts from the gateway only, plus the import map by its hash. */
  csp: string;
  files: Map<string, Asset>;
  vendor: Map<string, Asset>;
}

/** Reads the console's files from src/console/public (beside this module, also in a build) and the vendored libraries. */
export function loadConsoleAssets(dir: string = fileURLToPath(new URL('./public/', import.meta.url))): ConsoleAssets {
  const files = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { body: readFileSync(`${dir}/${name}`, 'utf8'), type });
  }
  const page = files.get('index.html');
  if (!page) throw new Error(`the console's index.html is missing from ${dir}`);
  files.delete('index.html');
  const vendor = new Map<string, Asset>();
  for (const [name, specifier] of Object.entries(VENDOR)) {
    vendor.set(name, { body: readFileSync(fileURLToPath(import.meta.resolve(specifier)), 'utf8'), type: TYPES['.mjs']! });
  }
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(page.body)?.[1];
  if (importMap === undefined) throw new Error('the console page has no import map');
  const hash = createHash('sha256').update(importMap).digest('base64');
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return { page, csp, files, vendor };
}
