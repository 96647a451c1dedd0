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
  /** Deletes every user and token (a reseed). */
  deleteUsersAndTokens(): Promise<void>;
}
