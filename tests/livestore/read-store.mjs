#!/usr/bin/env node
// Opens a store with the real LiveStore library (as the app would) and writes every row of the
// workspace app's user tables as JSON, for tests/package.rs to hold against rehearse's view.
//
//   node read-store.mjs <base directory> <store id> <out.json>
//
// Run from a directory holding the generator's schema.mjs and node_modules (the test links
// them in). LiveStore logs to stdout, so the rows go to a file.
import { writeFileSync } from 'node:fs'

import { makeAdapter } from '@livestore/adapter-node'
import { createStorePromise } from '@livestore/livestore'

import { makeWorkspaceSchema } from './schema.mjs'

const [base, storeId, out] = process.argv.slice(2)
const adapter = makeAdapter({ storage: { type: 'fs', baseDirectory: base }, clientId: 'gen-client', sessionId: 'static' })
const { schema } = makeWorkspaceSchema({ variant: 'a' })
const store = await createStorePromise({ adapter, schema, storeId, disableDevtools: true })
const rows = {}
for (const t of ['users', 'projects', 'todos', 'comments', 'project_stats', 'uiState']) {
  rows[t] = store.query({ query: `SELECT * FROM "${t}" ORDER BY 1`, bindValues: {} })
}
await store.shutdownPromise()
writeFileSync(out, JSON.stringify(rows))
