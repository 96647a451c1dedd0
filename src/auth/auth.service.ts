import type { IdentityReads } from './identity-store.js';
import { AppError } from '../core/errors.js';
import type { Principal } from '../policy/policy.service.js';
import { hashToken, sameHash } from './tokens.js';

export interface Credentials {
  authorization?: string | undefined;
  userHeader?: string | undefined;
}

export const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', role: 'anonymous', anonymous: true });

/**
 * Turns credentials into a principal, reading the user row on every call so that a disabled
 * user or a revoked token is refused on the very next request.
 */
export class AuthService {
  constructor(
    private readonly identity: IdentityReads,
    private readonly options: { trustUserHeader: boolean },
  ) {}

  /** The principal, or undefined when no credentials were given. Bad credentials throw 401. */
  async authenticate(credentials: Credentials): Promise<Principal | undefined> {
    const auth = credentials.authorization;
    if (auth !== undefined && auth !== '') {
      const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]{1,512})\s*$/i.exec(auth);
      if (!match) throw new AppError('unauthorized', 'Authorization must be "Bearer <token>"');
      return this.fromToken(match[1]!);
    }
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
}
