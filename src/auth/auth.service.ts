import type { IdentityReads } from './identity-store.js';
import { AppError } from '../core/errors.js';
import type { Principal } from '../policy/policy.service.js';
import { hashToken, sameHash, SESSION_SECRET } from './tokens.js';

export interface Credentials {
  authorization?: string | undefined;
  userHeader?: string | undefined;
  /** The web console's session secret, from its cookie (see sessions.service.ts). */
  session?: string | undefined;
}

export const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', role: 'anonymous', anonymous: true });

/**
 * Turns credentials into a principal, reading the user row on every call so that a disabled
 * user or a revoked token is refused on the very next request.
 */
export class AuthService {
  constructor(
    private readonly identity: IdentityReads,
    private readonly options: {
      trustUserHeader: boolean;
      clock?: { now(): number };
      /** Whether a role may hold a console session (approval.view); checked on every use, so a demoted user's sessions end at once. */
      mayHoldSession?: (role: string) => boolean;
    },
  ) {}

  /** The principal, or undefined when no credentials were given. Bad credentials throw 401. */
  async authenticate(credentials: Credentials): Promise<Principal | undefined> {
    const auth = credentials.authorization;
    if (auth !== undefined && auth !== '') {
      const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]{1,512})\s*$/i.exec(auth);
      if (!match) throw new AppError('unauthorized', 'Authorization must be "Bearer <token>"');
      return this.fromToken(match[1]!);
    }
    if (credentials.session !== undefined && credentials.session !== '') return this.fromSession(credentials.session);
    if (this.options.trustUserHeader && credentials.userHeader) {
      const user = await this.identity.user(credentials.userHeader);
      if (!user) throw new AppError('unauthorized', 'unknown user in X-User-ID');
      if (!user.active) throw new AppError('user_disabled', 'this user is disabled');
      return { id: user.id, role: user.role, anonymous: false };
    }
    return undefined;
  }

  async fromToken(token: string): Promise<Principal> {
    const hash = hashToken(token);
    const row = await this.identity.principalByTokenHash(hash);
    // The lookup is by hash, so timing reveals nothing about the token; compare anyway.
    if (!row || !sameHash(row.tokenHash, hash)) throw new AppError('unauthorized', 'invalid or revoked token');
    if (!row.active) throw new AppError('user_disabled', 'this user is disabled');
    return { id: row.userId, role: row.role, anonymous: false, tokenId: row.tokenId };
  }

  /** The user behind a console session secret, read afresh: a revoked or expired session, or a disabled user, is refused. */
  async fromSession(secret: string): Promise<Principal> {
    if (!SESSION_SECRET.test(secret)) throw new AppError('unauthorized', 'invalid or ended session; sign in again');
    const hash = hashToken(secret);
    const row = await this.identity.sessionBySecretHash(hash);
    const now = this.options.clock?.now() ?? Date.now();
    if (!row || !sameHash(row.secretHash, hash) || row.expiresAt <= now) throw new AppError('unauthorized', 'invalid or ended session; sign in again');
    if (!row.active) throw new AppError('user_disabled', 'this user is disabled');
    if (this.options.mayHoldSession && !this.options.mayHoldSession(row.role)) throw new AppError('unauthorized', `the role "${row.role}" may no longer use the console; session ended`);
    return { id: row.userId, role: row.role, anonymous: false, sessionId: row.sessionId };
  }
}
