import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet } from 'jose';
import { verifyReceipt, type ReceiptCheck } from '../src/receipts/receipts.js';
import { serverFrom } from './client.js';
import { safeJson, safeText } from './format.js';

/** Exit codes of `toolgate receipt verify`: scripts tell the failures apart. */
export const RECEIPT_EXIT = { valid: 0, error: 1, invalid: 2, expired: 3, argumentsMismatch: 4 } as const;

const EXIT_OF: Record<Exclude<ReceiptCheck, { ok: true }>['reason'], number> = {
  malformed: RECEIPT_EXIT.invalid,
  unknown_key: RECEIPT_EXIT.invalid,
  bad_signature: RECEIPT_EXIT.invalid,
  expired: RECEIPT_EXIT.expired,
  arguments_mismatch: RECEIPT_EXIT.argumentsMismatch,
};

class UsageError extends Error {}

async function loadJwks(source: string): Promise<JSONWebKeySet> {
  let text: string;
  if (/^https?:\/\//i.test(source)) {
    let res: Response;
    try {
      res = await fetch(source);
    } catch (err) {
      throw new UsageError(`cannot fetch the JWKS from ${source}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    if (!res.ok) throw new UsageError(`cannot fetch the JWKS from ${source}: HTTP ${res.status}`);
    text = await res.text();
  } else {
    try {
      text = readFileSync(source, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the JWKS file ${source}: ${(err as Error).message}`);
    }
  }
  try {
    const jwks = JSON.parse(text) as JSONWebKeySet;
    if (!Array.isArray(jwks.keys)) throw new Error('no "keys" array');
    return jwks;
  } catch (err) {
    throw new UsageError(`${source} is not a JWKS document: ${(err as Error).message}`);
  }
}

function loadArguments(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the arguments file ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not JSON: ${(err as Error).message}`);
  }
}

export function receiptCommand(program: Command) {
  const receipt = program.command('receipt').description('signed receipts of approved requests');
  receipt
    .command('verify <jws>')
    .description('check a receipt offline: its signature against the JWKS, its expiry and, with --arguments, that they are the arguments approved')
    .option('--arguments <file>', 'a JSON file with the arguments about to be run ("-" for stdin)')
    .option('--jwks <url|file>', 'the JWKS to check against: a file (fully offline) or a URL (default: <server>/.well-known/jwks.json)')
    .option('--json', 'print the result and the claims as JSON')
    .addHelpText(
      'after',
      `\nExit status: ${RECEIPT_EXIT.valid} valid; ${RECEIPT_EXIT.invalid} not a receipt, unknown key or bad signature; ${RECEIPT_EXIT.expired} expired; ${RECEIPT_EXIT.argumentsMismatch} the arguments are not the ones approved; ${RECEIPT_EXIT.error} the JWKS or arguments could not be read.`,
    )
    .action(async (jws: string, opts: { arguments?: string; jwks?: string; json?: boolean }, cmd: Command) => {
      let check: ReceiptCheck;
      try {
        const source = opts.jwks ?? new URL('/.well-known/jwks.json', serverFrom(cmd.optsWithGlobals<{ server?: string }>())).toString();
        const jwks = await loadJwks(source);
        const args = opts.arguments === undefined ? undefined : loadArguments(opts.arguments);
        check = await verifyReceipt(jws, jwks, args === undefined ? {} : { arguments: args });
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`toolgate: ${safeText(err.message)}\n`);
        process.exit(RECEIPT_EXIT.error);
      }
      if (opts.json) process.stdout.write(`${safeJson(check, 2)}\n`);
      if (!check.ok) {
        if (!opts.json) process.stdout.write(`INVALID (${check.reason}): ${safeText(check.message)}\n`);
        process.exit(EXIT_OF[check.reason]);
      }
      if (!opts.json) {
        const c = check.claims;
        const lines = [
          `valid: receipt for request ${c.jti} (tool ${c.tool}), requested by ${c.sub}`,
          `  approved by ${c.approvers.length ? c.approvers.join(', ') : 'nobody (it needed no approval)'}${c.grant ? ` under standing approval ${c.grant}` : ''} at ${new Date(c.iat * 1000).toISOString()}`,
          `  expires ${new Date(c.exp * 1000).toISOString()}; signed by key ${check.keyId}; call hash ${c.call_hash}; policy ${c.policy_version}`,
          opts.arguments === undefined ? '  arguments not checked (give --arguments FILE)' : '  arguments match the ones approved',
        ];
        process.stdout.write(`${lines.map((l) => safeText(l)).join('\n')}\n`);
      }
    });
}
