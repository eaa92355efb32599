#!/usr/bin/env node
// Writes a real LiveStore 0.4.0 store with the chat app (tests/livestore/chat.mjs), whose
// materializers read the state with ctx.query: raw queries for a row and for rows, the query
// builder's count for a scalar, and a branch on a query that finds nothing. The SQL
// definitions beside this file say the same with `query` steps.
//
// Run it with LS_DEV=1 where tests/livestore/ is installed (target/livestore-app after
// `cargo test`):
//   cp generate.mjs ../../target/livestore-app/chat-query.mjs
//   cd ../../target/livestore-app && LS_DEV=1 node chat-query.mjs --out <dir>
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

import { events, schema } from './chat.mjs'
import { seeded, writeStore } from './write-store.mjs'

const { values: opts } = parseArgs({
  options: { out: { type: 'string', default: 'out' }, events: { type: 'string', default: '160' }, seed: { type: 'string', default: 'chat' } },
})
const { pick, chance, int } = seeded(opts.seed)
const N = Number(opts.events)
let clock = Date.parse('2024-05-01T08:00:00.000Z')
const tick = () => new Date((clock += 1000 + int(300000)))
const TITLES = ['Standup', 'Design review', "O'Brien & co", 'Launch 🚀', '']
const PEOPLE = ['ada', 'grace', 'linus', 'barbara']
const conversations = []
// The numbers of each conversation's messages not deleted, as the app numbers them.
const numbered = {}
const next = {}
const log = []
for (let i = 0; i < N; i++) {
  const roll = int(100)
  const withMessages = conversations.filter((c) => numbered[c].length > 0)
  if (conversations.length < 2 || roll < 8) {
    const id = `conv_${conversations.length + 1}`
    conversations.push(id)
    numbered[id] = []
    next[id] = 1
    log.push(events.conversationStarted({ id, title: pick(TITLES) }))
  } else if (roll < 70 || withMessages.length === 0) {
    // Now and then to a conversation that was never started: the materializer returns nothing.
    const conversationId = chance(0.05) ? 'conv_missing' : pick(conversations)
    if (conversationId !== 'conv_missing') numbered[conversationId].push(next[conversationId]++)
    log.push(
      events.messageSent({ id: `msg_${i}`, conversationId, authorId: pick(PEOPLE), body: `message ${i}`, sentAt: tick() }),
    )
  } else if (roll < 80) {
    const conversationId = pick(withMessages)
    const seq = numbered[conversationId].splice(int(numbered[conversationId].length), 1)[0]
    log.push(events.messageDeleted({ conversationId, seq }))
  } else if (roll < 90) {
    log.push(events.conversationRecounted({ id: pick(conversations) }))
  } else {
    log.push(events.conversationArchived({ id: pick(conversations), archivedAt: tick() }))
  }
}
const rows = await writeStore({ schema, storeId: 'chat', out: opts.out, events: log, tables: ['conversations', 'messages'] })
const counts = {}
for (const e of log) counts[e.name] = (counts[e.name] ?? 0) + 1
const summary = { generator: 'corpora/chat-query/generate.mjs', seed: opts.seed, events: N, eventCounts: counts, stateRowCounts: rows }
writeFileSync(path.join(opts.out, 'corpus.json'), JSON.stringify(summary, null, 2) + '\n')
console.error(JSON.stringify(summary))
