#!/usr/bin/env node
// Writes a real LiveStore 0.4.0 store whose log the first version of the notes app wrote
// (tests/livestore/notes-v1.mjs) and whose state the next version (notes.mjs) rebuilt from
// that log when it first booted: old args re-encoded with the new schema into a JSON column.
// The state file the first version left is removed, so the corpus holds the next version's.
//
// Run it with LS_DEV=1 where tests/livestore/ is installed (target/livestore-app after
// `cargo test`):
//   cp generate.mjs ../../target/livestore-app/notes-reencoded.mjs
//   cd ../../target/livestore-app && LS_DEV=1 node notes-reencoded.mjs --out <dir>
import { readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

import * as v1 from './notes-v1.mjs'
import * as v2 from './notes.mjs'
import { seeded, writeStore } from './write-store.mjs'

const { values: opts } = parseArgs({
  options: { out: { type: 'string', default: 'out' }, events: { type: 'string', default: '80' }, seed: { type: 'string', default: 'notes' } },
})
const { pick, chance, int } = seeded(opts.seed)
const N = Number(opts.events)
const TAGS = ['work', 'home', 'later', 'ideas']
const DUES = ['2024-07-01', '2024-07-02T09:30:00Z', '2024-07-03T10:00:00.000+02:00', '2024-02-30', '2024-07-04T08:15:00.123456Z']
const meta = () => {
  const m = { title: pick(['Groceries', 'Plan', "Ada's notes", 'Trip 🧳']), links: [], tags: TAGS.filter(() => chance(0.4)) }
  if (chance(0.5)) m.color = pick(['red', 'blue'])
  if (chance(0.6)) m.due = pick(DUES)
  for (let i = int(3); i > 0; i--) m.links.push(chance(0.5) ? { href: `https://example.com/${int(9)}`, label: pick(TAGS) } : { href: '/local' })
  return m
}
const ids = []
const log = []
for (let i = 0; i < N; i++) {
  if (ids.length < 2 || chance(0.45)) {
    const id = ids.length < 2 || chance(0.7) ? `note_${ids.length + 1}` : pick(ids)
    if (!ids.includes(id)) ids.push(id)
    log.push(v1.events.noteSaved({ id, meta: meta(), body: `body ${i}` }))
  } else {
    log.push(v1.events.noteRetagged({ id: pick(ids), meta: meta() }))
  }
}
const dir = path.join(opts.out, 'notes')
await writeStore({ schema: v1.schema, storeId: 'notes', out: opts.out, events: log, tables: ['notes'] })
const firstState = readdirSync(dir).filter((f) => f.startsWith('state'))
// The next version boots on the same store: its tables differ, so LiveStore rebuilds the state
// from the log with the new schema, into a new state file.
const rows = await writeStore({ schema: v2.schema, storeId: 'notes', out: opts.out, events: [], tables: ['notes'], keep: true })
for (const f of firstState) rmSync(path.join(dir, f))
const counts = {}
for (const e of log) counts[e.name] = (counts[e.name] ?? 0) + 1
const summary = { generator: 'corpora/notes-reencoded/generate.mjs', seed: opts.seed, events: N, eventCounts: counts, stateRowCounts: rows }
writeFileSync(path.join(opts.out, 'corpus.json'), JSON.stringify(summary, null, 2) + '\n')
console.error(JSON.stringify(summary))
