import type { Principal } from '../policy/policy.service.js';

/** Variables the middleware puts on every request's context. */
export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal | undefined;
    /**
     * Set by a handler whose exchange ends after it returns (a streamed MCP response, a WebSocket
     * that authenticates after the upgrade): the request's observers wait for it, so the log and
     * the metrics see the real duration, status and user.
     */
    settled?: Promise<void>;
    /** Set by routes that machines poll (quietLog): the access log writes them at debug. */
    quietLog?: boolean;
  };
}
