#!/usr/bin/env node
// Writes a real LiveStore 0.4.0 store with the members app (tests/livestore/members.mjs),
// whose upserts set a column on conflict only when the event carries it: members are upserted
// again and again with and without email and isAdmin, so an admin upserted without isAdmin
// stays an admin. The SQL definitions beside this file say it with `{ value, when }`.
//
// Run it with LS_DEV=1 where tests/livestore/ is installed (target/livestore-app after
// `cargo test`):
//   cp generate.mjs ../../target/livestore-app/members-upsert.mjs
//   cd ../../target/livestore-app && LS_DEV=1 node members-upsert.mjs --out <dir>
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

import { events, schema } from './members.mjs'
import { seeded, writeStore } from './write-store.mjs'

const { values: opts } = parseArgs({
  options: { out: { type: 'string', default: 'out' }, events: { type: 'string', default: '150' }, seed: { type: 'string', default: 'members' } },
})
const { pick, chance, int } = seeded(opts.seed)
const N = Number(opts.events)
let clock = Date.parse('2024-06-01T08:00:00.000Z')
const tick = () => new Date((clock += 1000 + int(600000)))
const NAMES = ['Ada', 'Grace', 'Linus', 'Barbara', 'Edsger', 'Frances']
const TEAMS = ['core', 'web', 'ops']
const ids = []
const log = []
for (let i = 0; i < N; i++) {
  const roll = int(100)
  if (ids.length < 3 || roll < 55) {
    // A new member now and then, mostly upserts of known ones.
    const id = ids.length < 3 || chance(0.25) ? `mem_${ids.length + 1}` : pick(ids)
    if (!ids.includes(id)) ids.push(id)
    const a = { id, name: pick(NAMES), at: tick() }
    if (chance(0.4)) a.email = chance(0.2) ? null : `${a.name.toLowerCase()}.${id}@example.com`
    if (chance(0.35)) a.isAdmin = chance(0.5)
    log.push(events.memberUpserted(a))
  } else if (roll < 92) {
    const a = { teamId: pick(TEAMS), memberId: pick(ids), at: tick() }
    if (chance(0.5)) a.role = pick(['lead', 'member', 'guest'])
    log.push(events.teamJoined(a))
  } else {
    log.push(events.auditPruned({ before: new Date(clock - 3 * 3600000) }))
  }
}
const rows = await writeStore({ schema, storeId: 'members', out: opts.out, events: log, tables: ['members', 'memberships', 'audit'] })
const counts = {}
for (const e of log) counts[e.name] = (counts[e.name] ?? 0) + 1
const summary = { generator: 'corpora/members-upsert/generate.mjs', seed: opts.seed, events: N, eventCounts: counts, stateRowCounts: rows }
writeFileSync(path.join(opts.out, 'corpus.json'), JSON.stringify(summary, null, 2) + '\n')
console.error(JSON.stringify(summary))
