/**
 * The store contract's `elsewhere`: another process on the same database (test/store/other-process.ts),
 * started and ready, that runs a scenario once per argument list, all at once.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StoreFactory } from './contract.js';

const OTHER_PROCESS = fileURLToPath(new URL('./other-process.ts', import.meta.url));

/** Where the other process opens its store: a SQLite file or a PostgreSQL URL. */
export type OtherProcessTarget = { path: string } | { url: string };

export function otherProcess(target: OtherProcessTarget): ReturnType<NonNullable<StoreFactory['elsewhere']>> {
  return new Promise((ready, failed) => {
    const child = fork(OTHER_PROCESS, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the other process exited ${code} before answering`))));
    exited.catch(failed);
    child.once('error', failed);
    child.once('message', () =>
      ready({
        run: (scenario, calls) => {
          const answered = new Promise<unknown[]>((resolve, reject) =>
            child.once('message', (results: { value?: unknown; error?: string }[]) => {
              const error = results.find((r) => r.error !== undefined);
              if (error) reject(new Error(`in the other process: ${error.error}`));
              else resolve(results.map((r) => r.value));
            }),
          );
          child.send({ scenario, calls });
          return Promise.race([answered, exited]);
        },
      }),
    );
    child.send(target);
  });
}
