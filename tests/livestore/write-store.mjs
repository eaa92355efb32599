// Writes a real LiveStore 0.4.0 store: commits the events one by one through the app's own
// schema with the Node adapter, waits until the leader has persisted every one, and shuts
// down. What the corpus generators under corpora/ share; run them with LS_DEV=1 so that the
// state database records the SQL LiveStore ran for each event.
import { existsSync, rmSync } from 'node:fs'
import path from 'node:path'

import { makeAdapter } from '@livestore/adapter-node'
import { createStorePromise, StoreInternalsSymbol } from '@livestore/livestore'
import { Effect } from 'effect'

// Deterministic pseudo-random choices from a seed string (the same stream for the same seed).
export const seeded = (text) => {
  let seed = [...text].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 2654435761) >>> 0, 1779033703)
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    rand,
    pick: (a) => a[Math.floor(rand() * a.length)],
    chance: (p) => rand() < p,
    int: (n) => Math.floor(rand() * n),
  }
}

// Commits `events` (made with the app's event constructors) to `<out>/<storeId>/`, replacing
// what is there unless `keep` (to boot another app version on the same store); returns the
// number of rows of each table.
export const writeStore = async ({ schema, storeId, out, events, tables, keep = false }) => {
  if (!keep && existsSync(path.join(out, storeId))) rmSync(path.join(out, storeId), { recursive: true, force: true })
  const adapter = makeAdapter({ storage: { type: 'fs', baseDirectory: out }, clientId: 'gen-client', sessionId: 'static' })
  const store = await createStorePromise({ adapter, schema, storeId, disableDevtools: true })
  for (let i = 0; i < events.length; i++) {
    store.commit(events[i])
    if (i % 50 === 49) await new Promise((r) => setImmediate(r))
  }
  const syncProcessor = store[StoreInternalsSymbol].syncProcessor
  while (Effect.runSync(syncProcessor.syncState.get).pending.length > 0) await new Promise((r) => setTimeout(r, 5))
  const rows = {}
  for (const t of tables) rows[t] = store.query({ query: `SELECT count(*) AS n FROM '${t}'`, bindValues: {} })[0].n
  await store.shutdownPromise()
  return rows
}
