#!/usr/bin/env node
// The `toolgate` command. TypeScript runs through tsx, so a checkout needs no build step.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('./main.ts');
await run(process.argv);
