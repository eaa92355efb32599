#!/usr/bin/env node
// Writes a real LiveStore 0.4.0 store whose materializers use every form rehearse's SQL
// definitions must express: query-builder inserts of only the given keys, ON CONFLICT
// ignore / update (with excluded.col) / replace, composite conflict targets, RETURNING,
// updates and deletes with = != < LIKE IN (empty too) IS NULL / IS NOT NULL and
// JSON_CONTAINS, an update with nothing to set (SELECT 1), a delete without a where clause,
// raw SQL strings (several statements in one), positional and named binds (with a key the
// SQL does not use), booleans, ISO dates and epoch milliseconds, JSON columns, a table
// without a primary key, and partial and full client documents.
//
// Run it with LS_DEV=1 where @livestore/livestore@0.4.0 and @livestore/adapter-node@0.4.0
// are installed (a copy of tests/livestore/ after `npm ci`):
//   cp generate.mjs <gen>/ && cd <gen> && LS_DEV=1 node generate.mjs --out <dir> --events 400 --seed 7
// The state database then records, per event, the SQL LiveStore ran (the `debug` column).
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

import { makeAdapter } from '@livestore/adapter-node'
import { createStorePromise, Events, makeSchema, Schema, State, StoreInternalsSymbol } from '@livestore/livestore'
import { Effect } from 'effect'

const { values: opts } = parseArgs({
  options: {
    out: { type: 'string', default: 'out' },
    events: { type: 'string', default: '400' },
    seed: { type: 'string', default: '7' },
  },
})

const { SQLite } = State
const items = SQLite.table({
  name: 'items',
  columns: {
    id: SQLite.text({ primaryKey: true }),
    name: SQLite.text({ default: '' }),
    qty: SQLite.integer({ default: 0 }),
    price: SQLite.real({ nullable: true }),
    tags: SQLite.json({ schema: Schema.Array(Schema.String), default: [] }),
    flags: SQLite.json({ schema: Schema.Record({ key: Schema.String, value: Schema.Boolean }), nullable: true }),
    active: SQLite.boolean({ default: true }),
    seenAt: SQLite.datetime({ nullable: true }),
    dueMs: SQLite.integer({ schema: Schema.DateFromNumber, nullable: true }),
    note: SQLite.text({ nullable: true }),
  },
})
const counters = SQLite.table({
  name: 'counters',
  columns: {
    key: SQLite.text({ primaryKey: true }),
    n: SQLite.integer({ default: 0 }),
    last: SQLite.text({ nullable: true }),
  },
})
const pairs = SQLite.table({
  name: 'pairs',
  columns: {
    a: SQLite.text({ primaryKey: true }),
    b: SQLite.integer({ primaryKey: true }),
    v: SQLite.text({ default: '' }),
  },
})
// No primary key: rows compare as a multiset.
const audit = SQLite.table({
  name: 'audit',
  columns: { kind: SQLite.text(), ref: SQLite.text(), at: SQLite.text() },
})
const prefs = SQLite.clientDocument({
  name: 'prefs',
  schema: Schema.Struct({
    theme: Schema.Literal('light', 'dark'),
    size: Schema.Number,
    pinned: Schema.NullOr(Schema.String),
    recent: Schema.Array(Schema.String),
  }),
  default: { id: 'main', value: { theme: 'light', size: 1, pinned: null, recent: [] } },
})
const draft = SQLite.clientDocument({
  name: 'draft',
  schema: Schema.Struct({ text: Schema.String, cursor: Schema.Number }),
  default: { id: 'main', value: { text: '', cursor: 0 } },
  partialSet: false,
})
const tables = { items, counters, pairs, audit, prefs, draft }

const events = {
  itemAdded: Events.synced({
    name: 'ItemAdded',
    schema: Schema.Struct({
      id: Schema.String,
      name: Schema.String,
      qty: Schema.optional(Schema.Int),
      price: Schema.optional(Schema.Number),
      tags: Schema.Array(Schema.String),
      flags: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Boolean })),
      seenAt: Schema.optional(Schema.Date),
      dueMs: Schema.optional(Schema.DateFromNumber),
    }),
  }),
  itemRenamed: Events.synced({ name: 'ItemRenamed', schema: Schema.Struct({ id: Schema.String, name: Schema.String }) }),
  itemsRestocked: Events.synced({
    name: 'ItemsRestocked',
    schema: Schema.Struct({ ids: Schema.Array(Schema.String), qty: Schema.Int }),
  }),
  itemsDeactivated: Events.synced({ name: 'ItemsDeactivated', schema: Schema.Struct({ tag: Schema.String }) }),
  itemsPurged: Events.synced({
    name: 'ItemsPurged',
    schema: Schema.Struct({ maxQty: Schema.Int, before: Schema.Date }),
  }),
  itemNoted: Events.synced({
    name: 'ItemNoted',
    schema: Schema.Struct({ id: Schema.String, note: Schema.NullOr(Schema.String), seenAt: Schema.Date }),
  }),
  noteCleared: Events.synced({ name: 'NoteCleared', schema: Schema.Struct({ id: Schema.String }) }),
  liked: Events.synced({ name: 'Liked', schema: Schema.Struct({ pattern: Schema.String }) }),
  priced: Events.synced({
    name: 'Priced',
    schema: Schema.Struct({ id: Schema.String, price: Schema.Number, onSale: Schema.Boolean }),
  }),
  touched: Events.synced({ name: 'Touched', schema: Schema.Struct({ id: Schema.String }) }),
  ticked: Events.clientOnly({ name: 'Ticked', schema: Schema.Struct({}) }),
  paired: Events.synced({
    name: 'Paired',
    schema: Schema.Struct({ a: Schema.String, b: Schema.Int, v: Schema.String }),
  }),
  auditCleared: Events.synced({ name: 'AuditCleared', schema: Schema.Struct({}) }),
  prefsSet: prefs.set,
  draftSet: draft.set,
}

const materializers = State.SQLite.materializers(events, {
  ItemAdded: ({ id, name, qty, price, tags, flags, seenAt, dueMs }) => [
    items.insert({ id, name, qty, price, tags, flags, seenAt, dueMs }).onConflict('id', 'ignore'),
    counters.insert({ key: 'items', n: 1, last: id }).onConflict('key', 'update', { last: id, n: undefined }),
  ],
  ItemRenamed: ({ id, name }) => items.update({ name }).where({ id }).returning('id', 'name'),
  ItemsRestocked: ({ ids, qty }) => items.update({ qty }).where({ id: { op: 'IN', value: ids } }),
  ItemsDeactivated: ({ tag }) => items.update({ active: false }).where({ tags: { op: 'JSON_CONTAINS', value: tag } }),
  ItemsPurged: ({ maxQty, before }) => [
    items.delete().where({ qty: { op: '<', value: maxQty }, active: false, seenAt: { op: '<', value: before } }),
    items.delete().where({ id: { op: 'NOT IN', value: [] }, qty: { op: '<', value: -1000 } }),
  ],
  ItemNoted: ({ id, note, seenAt }) => items.update({ note, seenAt }).where({ id }),
  NoteCleared: ({ id }) => items.update({ note: null, price: null }).where({ id, note: { op: '!=', value: null } }),
  Liked: ({ pattern }) => items.update({ note: 'liked' }).where({ name: { op: 'LIKE', value: pattern }, note: null }),
  Priced: ({ id, price, onSale }) => ({
    sql: 'UPDATE items SET price = $price, active = $onSale WHERE id = $id',
    bindValues: { id, price, onSale, unusedKey: 'zzz' },
  }),
  Touched: ({ id }) => items.update({ seenAt: undefined }).where({ id }),
  Ticked: () =>
    "UPDATE counters SET n = n + 1 WHERE key = 'ticks'; INSERT INTO counters (key, n) VALUES ('ticks', 1) ON CONFLICT (key) DO NOTHING",
  Paired: ({ a, b, v }) => [
    pairs.insert({ a, b, v }).onConflict(['a', 'b'], 'replace'),
    { sql: 'INSERT INTO audit (kind, ref, at) VALUES (?, ?, ?)', bindValues: ['pair', `${a}/${b}`, v] },
  ],
  AuditCleared: () => audit.delete(),
})

const schema = makeSchema({ events, state: State.SQLite.makeState({ tables, materializers }) })

// Deterministic pseudo-random choices.
let seed = [...opts.seed].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 2654435761) >>> 0, 1779033703)
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const pick = (a) => a[Math.floor(rand() * a.length)]
const chance = (p) => rand() < p
const TAGS = ['red', 'blue', 'green', 'sale', 'new']
const NAMES = ['apple', 'pear', 'plum', 'fig', 'kiwi', 'lime', "o'range", 'ümlaut', 'tab\there', 'emoji 🍋']
let clock = Date.parse('2024-03-01T08:00:00.000Z')
const tick = () => new Date((clock += 1000 + Math.floor(rand() * 600000)))
const ids = []
let counter = 0

const next = (i) => {
  const r = rand()
  if (ids.length < 3 || r < 0.2) {
    const id = `it_${++counter}`
    ids.push(id)
    const a = { id, name: pick(NAMES), tags: TAGS.filter(() => chance(0.3)) }
    if (chance(0.7)) a.qty = Math.floor(rand() * 50)
    if (chance(0.5)) a.price = pick([1, 2.5, 0.1 + 0.2, 1e21, 19.99, 3000000000])
    if (chance(0.3)) a.flags = { fresh: chance(0.5), '2': true, b: false }
    if (chance(0.5)) a.seenAt = tick()
    if (chance(0.5)) a.dueMs = new Date(clock + 86400000 * Math.floor(rand() * 30))
    return events.itemAdded(a)
  }
  if (r < 0.28) return events.itemRenamed({ id: pick(ids), name: pick(NAMES) })
  if (r < 0.34) return events.itemsRestocked({ ids: chance(0.15) ? [] : [pick(ids), pick(ids)], qty: Math.floor(rand() * 20) })
  if (r < 0.38) return events.itemsDeactivated({ tag: pick(TAGS) })
  if (r < 0.41) return events.itemsPurged({ maxQty: 5, before: new Date(clock - 3600000) })
  if (r < 0.49) return events.itemNoted({ id: pick(ids), note: chance(0.2) ? null : `note ${Math.floor(rand() * 100)}`, seenAt: tick() })
  if (r < 0.53) return events.noteCleared({ id: pick(ids) })
  if (r < 0.56) return events.liked({ pattern: pick(['%p%', 'a%', '%e']) })
  if (r < 0.63) return events.priced({ id: pick(ids), price: pick([5, 7.25, 2147483648, -0]), onSale: chance(0.5) })
  if (r < 0.66) return events.touched({ id: pick(ids) })
  if (r < 0.72) return events.ticked({})
  if (r < 0.78) return events.paired({ a: pick(['x', 'y', 'z']), b: Math.floor(rand() * 3), v: `v${Math.floor(rand() * 9)}` })
  if (r < 0.8 && i < N / 2) return events.auditCleared({})
  if (r < 0.92) {
    const value = {}
    if (chance(0.4)) value.theme = pick(['light', 'dark'])
    if (chance(0.4)) value.size = pick([0.75, 1, 1.5, 2])
    if (chance(0.3)) value.pinned = chance(0.5) ? null : pick(ids)
    if (chance(0.3)) value.recent = [pick(ids), pick(ids)]
    return prefs.set(value, 'main')
  }
  return draft.set({ text: pick(NAMES), cursor: Math.floor(rand() * 10) }, pick(['main', 'side']))
}

const OUT = opts.out
const storeId = 'features'
if (existsSync(path.join(OUT, storeId))) rmSync(path.join(OUT, storeId), { recursive: true, force: true })
mkdirSync(OUT, { recursive: true })
const adapter = makeAdapter({ storage: { type: 'fs', baseDirectory: OUT }, clientId: 'features-client', sessionId: 'static' })
const store = await createStorePromise({ adapter, schema, storeId, disableDevtools: true })
const N = Number(opts.events)
const counts = {}
for (let i = 0; i < N; i++) {
  const ev = next(i)
  counts[ev.name] = (counts[ev.name] ?? 0) + 1
  store.commit(ev)
  if (i % 50 === 49) await new Promise((r) => setImmediate(r))
}
const syncProcessor = store[StoreInternalsSymbol].syncProcessor
while (Effect.runSync(syncProcessor.syncState.get).pending.length > 0) await new Promise((r) => setTimeout(r, 5))
const rows = {}
for (const t of ['items', 'counters', 'pairs', 'audit', 'prefs', 'draft']) {
  rows[t] = store.query({ query: `SELECT count(*) AS n FROM ${t}`, bindValues: {} })[0].n
}
await store.shutdownPromise()
const summary = { generator: 'corpora/features/generate.mjs', seed: opts.seed, events: N, eventCounts: Object.fromEntries(Object.entries(counts).sort()), stateRowCounts: rows }
writeFileSync(path.join(OUT, 'corpus.json'), JSON.stringify(summary, null, 2) + '\n')
console.error(JSON.stringify(summary))
