import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';

/**
 * The gateway's Ed25519 signing keys: one signs (the newest that is not retired), every one of
 * them verifies. They sign receipts and audit checkpoints, live in one private file (0600) outside
 * the database, and are shared by every instance that is given the same file.
 *
 * The file is JSON, `{"version":1,"keys":[{"kid","createdAt","retiredAt","privateKey"}]}`. A file
 * that is a single PKCS#8 PEM key (what toolgate wrote before receipts) is read as a ring of that
 * one key, so checkpoints signed with it still verify; the first rotation rewrites it as JSON.
 */

export interface SigningKey {
  /** The first 16 hex digits of the SHA-256 of the public key (SPKI DER): the JWS `kid` and the checkpoints' `keyId`. */
  keyId: string;
  publicKey: KeyObject;
  privateKey?: KeyObject;
  createdAt: number;
  /** When a newer key took over signing; null for the key that signs. */
  retiredAt: number | null;
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

const ringFile = z
  .object({
    version: z.literal(1),
    keys: z
      .array(
        z
          .object({
            kid: z.string().regex(/^[0-9a-f]{16}$/),
            createdAt: z.iso.datetime(),
            retiredAt: z.iso.datetime().nullable(),
            privateKey: z.string().startsWith('-----BEGIN PRIVATE KEY-----'),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
type RingFile = z.infer<typeof ringFile>;

function toKey(pem: string, createdAt: number, retiredAt: number | null, where: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${where}: not an Ed25519 private key`);
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), publicKey, privateKey, createdAt, retiredAt };
}

/** Parses a key ring file's text (JSON, or the single PEM key of older versions). */
export function parseKeyRing(text: string, where: string, mtimeMs = 0): SigningKey[] {
  if (text.trimStart().startsWith('-----BEGIN')) return [toKey(text, mtimeMs, null, where)];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${where}: neither a PEM key nor a JSON key ring`);
  }
  const parsed = ringFile.safeParse(raw);
  if (!parsed.success) throw new Error(`${where}: invalid key ring: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data.keys.map((k, i) => {
    const key = toKey(k.privateKey, Date.parse(k.createdAt), k.retiredAt === null ? null : Date.parse(k.retiredAt), `${where} key ${i}`);
    if (key.keyId !== k.kid) throw new Error(`${where}: key ${i} is listed as ${k.kid} but its public key is ${key.keyId}`);
    return key;
  });
}

function serialize(keys: readonly SigningKey[]): string {
  const file: RingFile = {
    version: 1,
    keys: keys.map((k) => ({
      kid: k.keyId,
      createdAt: new Date(k.createdAt).toISOString(),
      retiredAt: k.retiredAt === null ? null : new Date(k.retiredAt).toISOString(),
      privateKey: k.privateKey!.export({ type: 'pkcs8', format: 'pem' }) as string,
    })),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

function newKey(now: number): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: keyIdOf(publicKey), publicKey, privateKey, createdAt: now, retiredAt: null };
}

/** Writes `text` to `path` (0600) whole: under a temporary name first, then renamed into place. */
function writePrivate(path: string, text: string) {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  rmSync(temporary, { force: true });
  writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' });
  renameSync(temporary, path);
  chmodSync(path, 0o600);
}

/**
 * The keys of one file. It re-reads the file when it changed (checked at most once a second), so
 * a rotation made by `toolgate keys rotate` or by another instance sharing the file is picked up
 * without a restart.
 */
export class KeyRing {
  private keys: SigningKey[];
  private mtimeMs: number;
  private checkedAt = 0;

  private constructor(
    readonly path: string,
    keys: SigningKey[],
    mtimeMs: number,
    private readonly clock: { now(): number },
  ) {
    this.keys = keys;
    this.mtimeMs = mtimeMs;
  }

  /** Reads the ring at `path`, or creates it with one new key (mode 0600, folder 0700) on first start. */
  static openOrCreate(path: string, clock: { now(): number } = { now: () => Date.now() }): KeyRing {
    if (!existsSync(path)) {
      const text = serialize([newKey(clock.now())]);
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // Linked into place: a gateway starting at the same moment either wins or reads the winner's ring.
      const temporary = `${path}.${process.pid}.tmp`;
      rmSync(temporary, { force: true });
      writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' });
      try {
        linkSync(temporary, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        unlinkSync(temporary);
      }
    }
    return KeyRing.read(path, clock)!;
  }

  /** The ring at `path`, or undefined when there is no file. */
  static read(path: string, clock: { now(): number } = { now: () => Date.now() }): KeyRing | undefined {
    if (!existsSync(path)) return undefined;
    const { mtimeMs } = statSync(path);
    return new KeyRing(path, parseKeyRing(readFileSync(path, 'utf8'), path, mtimeMs), mtimeMs, clock);
  }

  /** Every key, oldest first (retired ones too: they still verify what they signed). */
  all(): readonly SigningKey[] {
    this.reloadIfChanged();
    return this.keys;
  }

  /** The key that signs now: the newest one not retired. */
  current(): SigningKey {
    const keys = this.all();
    return [...keys].reverse().find((k) => k.retiredAt === null) ?? keys.at(-1)!;
  }

  find(keyId: string): SigningKey | undefined {
    return this.all().find((k) => k.keyId === keyId);
  }

  /**
   * Keys whose signatures may still be live: the signing one, and retired ones whose last
   * receipts (valid `lifetimeMs` at most) have not all expired yet. These are what JWKS publishes.
   */
  published(lifetimeMs: number): SigningKey[] {
    const now = this.clock.now();
    return this.all().filter((k) => k.retiredAt === null || k.retiredAt + lifetimeMs > now);
  }

  /** Adds a new key that signs from now on; the one before it is retired (and stays, to verify). */
  rotate(): SigningKey {
    this.reloadIfChanged(true);
    const now = this.clock.now();
    const fresh = newKey(now);
    const keys = [...this.keys.map((k) => (k.retiredAt === null ? { ...k, retiredAt: now } : k)), fresh];
    writePrivate(this.path, serialize(keys));
    this.keys = keys;
    this.mtimeMs = statSync(this.path).mtimeMs;
    return fresh;
  }

  private reloadIfChanged(force = false) {
    const now = Date.now();
    if (!force && now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    try {
      const { mtimeMs } = statSync(this.path);
      if (mtimeMs === this.mtimeMs && !force) return;
      this.keys = parseKeyRing(readFileSync(this.path, 'utf8'), this.path, mtimeMs);
      this.mtimeMs = mtimeMs;
    } catch {
      // A file being replaced, or removed: keep signing with the keys already read.
    }
  }
}
