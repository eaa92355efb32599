#!/usr/bin/env node
// Writes a real LiveStore 0.4.0 store with the prefs app (tests/livestore/prefs.mjs), whose
// client documents hold a literal, a string, a number, an array, a nullable string, a record
// and a struct, each set again and again for two document ids (null too, where the schema
// allows it). The SQL definitions beside this file declare the documents with their defaults.
//
// Run it with LS_DEV=1 where tests/livestore/ is installed (target/livestore-app after
// `cargo test`):
//   cp generate.mjs ../../target/livestore-app/prefs-documents.mjs
//   cd ../../target/livestore-app && LS_DEV=1 node prefs-documents.mjs --out <dir>
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

import { schema, tables } from './prefs.mjs'
import { seeded, writeStore } from './write-store.mjs'

const { values: opts } = parseArgs({
  options: { out: { type: 'string', default: 'out' }, events: { type: 'string', default: '120' }, seed: { type: 'string', default: 'prefs' } },
})
const { pick, chance, int } = seeded(opts.seed)
const N = Number(opts.events)
const WORDS = ['inbox', 'todo', 'lunch 🥪', "it's", 'tab\there', '']
const values = {
  theme: () => pick(['light', 'dark', 'system']),
  draft: () => pick(WORDS) + (chance(0.5) ? ` ${int(100)}` : ''),
  zoom: () => pick([0.75, 1, 1.25, 2, 3e21, -0, 0.1 + 0.2]),
  recent: () => Array.from({ length: int(4) }, () => pick(WORDS)),
  pinned: () => (chance(0.4) ? null : pick(WORDS)),
  filters: () => Object.fromEntries(Array.from({ length: int(3) }, () => [pick(['open', 'mine', '2', 'done']), chance(0.5)])),
  layout: () => {
    const v = {}
    if (chance(0.6)) v.columns = 1 + int(4)
    if (chance(0.6)) v.dense = chance(0.5)
    if (chance(0.3)) v.title = pick(WORDS)
    return v
  },
}
const names = Object.keys(values)
const log = []
for (let i = 0; i < N; i++) {
  const name = pick(names)
  log.push(tables[name].set(values[name](), chance(0.75) ? 'main' : 'side'))
}
const rows = await writeStore({ schema, storeId: 'prefs', out: opts.out, events: log, tables: names })
const counts = {}
for (const e of log) counts[e.name] = (counts[e.name] ?? 0) + 1
const summary = { generator: 'corpora/prefs-documents/generate.mjs', seed: opts.seed, events: N, eventCounts: counts, stateRowCounts: rows }
writeFileSync(path.join(opts.out, 'corpus.json'), JSON.stringify(summary, null, 2) + '\n')
console.error(JSON.stringify(summary))
