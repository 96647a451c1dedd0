import type { Principal } from '../policy/policy.service.js';

/** Variables the middleware puts on every request's context. */
export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal | undefined;
  };
}
