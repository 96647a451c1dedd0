import type { Command } from 'commander';
import { createAuditLog } from '../src/audit/audit.service.js';
import { loadConfig } from '../src/config.js';
import { KeyRing } from '../src/signing/key-ring.js';
import { safeText } from './format.js';
import { withLocalStore } from './local.js';
import { cliActor } from './users.command.js';

export function keysCommand(program: Command) {
  const keys = program.command('keys').description('the Ed25519 keys that sign receipts and audit checkpoints (SIGNING_KEY_FILE)');

  keys
    .command('list')
    .description('every key of the ring, the one that signs last')
    .action(() => {
      const { signingKeyPath, receiptTtlMs } = loadConfig(process.env);
      const ring = KeyRing.read(signingKeyPath);
      if (!ring) throw new Error(`no key ring at ${signingKeyPath}: the gateway creates it on its first start`);
      const published = new Set(ring.published(receiptTtlMs + 60_000).map((k) => k.keyId));
      const current = ring.current().keyId;
      for (const k of ring.all()) {
        const state = k.keyId === current ? 'signing' : published.has(k.keyId) ? 'retired, still published' : 'retired, verifies checkpoints only';
        process.stdout.write(`${safeText(`${k.keyId}  created ${new Date(k.createdAt).toISOString()}  ${state}${k.retiredAt ? ` since ${new Date(k.retiredAt).toISOString()}` : ''}`)}\n`);
      }
    });

  keys
    .command('rotate')
    .description('add a new signing key; the old one stays published until its receipts expire, and keeps verifying checkpoints')
    .action(async () => {
      const { signingKeyPath, receiptTtlMs } = loadConfig(process.env);
      const ring = KeyRing.openOrCreate(signingKeyPath);
      const before = ring.current().keyId;
      const fresh = ring.rotate();
      await withLocalStore(async (store) => {
        const clock = { now: () => Date.now() };
        const audit = createAuditLog({ clock, instanceId: `cli-${process.pid}` });
        await store.withTransaction((tx) => audit.append(tx, { actor: cliActor(), action: 'keys.rotated', details: { retired: before, signing: fresh.keyId, file: signingKeyPath } }));
      });
      process.stdout.write(
        `${safeText(`rotated: ${fresh.keyId} signs from now on; ${before} is retired and stays in /.well-known/jwks.json for ${Math.ceil(receiptTtlMs / 1000) + 60} s. Instances that share ${signingKeyPath} pick the new key up within a second; give the file to any that keep their own copy.`)}\n`,
      );
    });
}
