import { defineConfig } from 'drizzle-kit'
import { MIGRATIONS_SCHEMA, MIGRATIONS_TABLE } from './src/db/schema.js'

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './src/db/migrations',
  strict: true,
  verbose: true,
  migrations: { table: MIGRATIONS_TABLE, schema: MIGRATIONS_SCHEMA },
})
