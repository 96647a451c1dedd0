import { defineConfig } from 'drizzle-kit';

// The PostgreSQL migrations (DATABASE_URL=postgres://…); drizzle.config.ts generates SQLite's.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/pg-schema.ts',
  out: './drizzle/pg',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://localhost/toolgate' },
});
