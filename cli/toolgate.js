#!/usr/bin/env node
// The `toolgate` command. In a checkout (src/ present) TypeScript runs through tsx, so there is
// no build step and nothing can be stale; an image built with `npm run build` ships dist/ alone,
// without tsx (a devDependency).
import { existsSync } from 'node:fs';

const fromSource = existsSync(new URL('../src/', import.meta.url));
const built = existsSync(new URL('../dist/cli/main.js', import.meta.url));
let register;
if (fromSource) {
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !built) {
      process.stderr.write('toolgate: running from a checkout needs tsx: run `npm install` (with devDependencies), or `npm run build`\n');
      process.exit(1);
    }
  }
}
let run;
if (register) {
  register();
  ({ run } = await import('./main.ts'));
} else {
  ({ run } = await import('../dist/cli/main.js'));
}
await run(process.argv);
