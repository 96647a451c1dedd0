#!/usr/bin/env node
// The `toolgate` command. In a checkout (src/ present) TypeScript runs through tsx, so there is
// no build step and nothing can be stale; an image built with `npm run build` ships dist/ alone.
import { existsSync } from 'node:fs';

const fromSource = existsSync(new URL('../src/', import.meta.url));
let run;
if (fromSource) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ run } = await import('./main.ts'));
} else {
  ({ run } = await import('../dist/cli/main.js'));
}
await run(process.argv);
