import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The folder of PostgreSQL's server binaries (initdb, pg_ctl): TOOLGATE_PG_BIN, or Debian's newest /usr/lib/postgresql/<version>/bin. */
export function pgBinDir(): string | undefined {
  const candidates = process.env.TOOLGATE_PG_BIN
    ? [process.env.TOOLGATE_PG_BIN]
    : (existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql') : [])
        .sort((a, b) => Number(b) - Number(a))
        .map((version) => join('/usr/lib/postgresql', version, 'bin'));
  return candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
}
