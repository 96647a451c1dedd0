/** A user as the store keeps it. */
export interface UserRecord {
  id: string;
  role: string;
  active: boolean;
  createdAt: number;
  disabledAt: number | null;
}

/** The user behind a live token, looked up by the token's hash. */
export interface TokenPrincipalRecord {
  userId: string;
  role: string;
  active: boolean;
  tokenId: number;
  tokenHash: string;
}

/** A web console session as the store keeps it (never its secret, only the secret's hash). */
export interface SessionRecord {
  id: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  address: string;
  userAgent: string;
}

/** The user behind an unrevoked session, looked up by the hash of the session's secret. */
export interface SessionPrincipalRecord {
  sessionId: string;
  userId: string;
  role: string;
  active: boolean;
  secretHash: string;
  expiresAt: number;
}

export interface IdentityReads {
  /** The live (unrevoked) token with this SHA-256 hash and its user. */
  principalByTokenHash(hash: string): Promise<TokenPrincipalRecord | undefined>;
  user(id: string): Promise<UserRecord | undefined>;
  /** Every user with their number of live tokens, by id. */
  listUsers(): Promise<(Omit<UserRecord, 'disabledAt'> & { tokens: number })[]>;
  countUsers(): Promise<number>;
  /** Ids of every token, live or revoked. */
  tokenIds(): Promise<number[]>;
  /**
   * Whether a requester still holds the power that made a request: the user's `active` flag (null
   * when the user no longer exists) and whether the token is live (null without a token).
   */
  requesterStanding(userId: string, tokenId: number | null): Promise<{ userActive: boolean | null; tokenLive: boolean | null }>;
  /** The unrevoked console session whose secret has this SHA-256 hash, and its user (expiry is the caller's to judge). */
  sessionBySecretHash(hash: string): Promise<SessionPrincipalRecord | undefined>;
  /** Console sessions neither revoked nor expired at `now` (of one user, or everyone's), newest first. */
  liveSessions(now: number, userId?: string): Promise<SessionRecord[]>;
}

/** Users and tokens inside a transaction. */
export interface IdentityStore extends IdentityReads {
  insertUser(row: { id: string; role: string; now: number }): Promise<void>;
  /** Undefined when there is no such user. */
  setUserActive(id: string, active: boolean, now: number): Promise<UserRecord | undefined>;
  /** Stores a token's hash; returns the token's id. */
  insertToken(row: { userId: string; tokenHash: string; prefix: string; now: number }): Promise<number>;
  /** Revokes a user's live tokens; returns the ids of those it revoked. */
  revokeTokens(userId: string, now: number): Promise<number[]>;
  insertSession(row: Omit<SessionRecord, 'revokedAt'> & { secretHash: string }): Promise<void>;
  /** Revokes one unrevoked session; undefined when there is none by that id (or it was already revoked). */
  revokeSession(id: string, now: number): Promise<SessionRecord | undefined>;
  /** Revokes every unrevoked session of a user; returns their ids. */
  revokeSessionsOf(userId: string, now: number): Promise<string[]>;
  /** Deletes sessions that ended (expired or revoked) before `cutoff`; returns how many. */
  deleteSessionsEndedBefore(cutoff: number): Promise<number>;
  /** Deletes every user, token and session (a reseed). */
  deleteUsersAndTokens(): Promise<void>;
}
