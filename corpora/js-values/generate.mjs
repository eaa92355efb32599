#!/usr/bin/env node
// Writes a real LiveStore 0.4.0 store (the generator's workspace app) whose args hold the
// JavaScript values a replay in another language gets wrong most easily:
// - lone UTF-16 surrogates: text cut in the middle of an emoji, as an app that truncates
//   strings with `slice` does. JSON.stringify writes each as a `\ud83d` escape in argsJson;
//   wa-sqlite binds it as U+FFFD in a text column, while a JSON column keeps the escape. They
//   reach every path: query-builder inserts and updates, a raw-SQL materializer's binds, a
//   where clause on an id that holds one, JSON columns and object keys, and the client
//   document's json_set;
// - NUL in text: wa-sqlite binds a string as a C string, so LiveStore stores the text up to
//   the NUL (in a JSON column it is an escape); U+2028 and U+2029, which JSON.stringify leaves
//   raw;
// - numbers at wa-sqlite's int32 boundary (bound as integers inside it, doubles outside),
//   -0, 1e21 and the smallest double, and dates before 1970 and far in the future.
//
// Run it with LS_DEV=1 beside the generator's schema.mjs, where @livestore/livestore@0.4.0
// and @livestore/adapter-node@0.4.0 are installed (a copy of tests/livestore/ after
// `npm ci`, or target/livestore-app after `cargo test --test plugin`):
//   cp generate.mjs <gen>/ && cd <gen> && LS_DEV=1 node generate.mjs --out <dir>
import { rmSync } from 'node:fs'
import { parseArgs } from 'node:util'

import { makeAdapter } from '@livestore/adapter-node'
import { createStorePromise } from '@livestore/livestore'

import { makeWorkspaceSchema } from './schema.mjs'

const { values: opts } = parseArgs({ options: { out: { type: 'string', default: 'out' } } })
rmSync(opts.out, { recursive: true, force: true })

const { schema, events } = makeWorkspaceSchema({ variant: 'a' })
const adapter = makeAdapter({
  storage: { type: 'fs', baseDirectory: opts.out },
  clientId: 'gen-client',
  sessionId: 'static',
})
const store = await createStorePromise({ adapter, schema, storeId: 'workspace', disableDevtools: true })

// The first `n` UTF-16 code units: `cut('😀', 1)` is the lone high surrogate \ud83d.
const cut = (s, n) => s.slice(0, n)
const low = '😀'.slice(1) // a lone low surrogate, \ude00
const at = (m) => new Date(Date.parse('2024-05-01T09:00:00.000Z') + m * 60000)
const cutId = `todo_${cut('🔥', 1)}`

const log = [
  events.userRegistered({ id: 'usr_1', name: cut('Zoë 😀', 5), email: 'zoe@example.com', role: 'owner', createdAt: at(0) }),
  events.userRegistered({ id: 'usr_2', name: `${low}Ada`, email: 'ada@example.com', role: 'member', createdAt: at(1) }),
  events.userProfileUpdated({
    id: 'usr_1',
    patch: { name: `Zoë ${cut('🎉🎉', 3)}`, settings: { theme: 'dark', locale: cut('de-😀', 4), notifications: { email: true, push: false, digest: 'daily' } } },
    updatedAt: at(2),
  }),
  events.projectCreated({
    id: 'prj_1', name: cut('Launch 🚀', 8), ownerId: 'usr_1', color: '#e11d48', description: `${low} first`,
    visibility: 'team', meta: { tags: ['ok', cut('🎉', 1), 'whole 🎉'], starred: false }, createdAt: at(3),
  }),
  // v1.TodoCreated's materializer is raw SQL with named binds.
  events.todoCreatedV1({ id: 'todo_v1', projectId: 'prj_1', text: cut('Legacy 📦', 8), createdAt: at(4) }),
  events.todoCreated({
    id: cutId, projectId: 'prj_1', text: cut('Ship it 🚢', 9), priority: 1, assigneeId: 'usr_1',
    tags: [cut('🔥', 1), 'x'], checklist: [{ label: cut('👍', 1), done: false }], createdAt: at(5),
  }),
  events.todoCreated({
    id: 'todo_2', projectId: 'prj_1', text: 'whole 😀 pair', priority: 2, assigneeId: null,
    tags: [], checklist: [], createdAt: at(6),
  }),
  // Updates and a completion whose where clause names the id that holds a lone surrogate.
  events.todoUpdated({ id: cutId, text: `${cut('✍️', 1)} edited ${cut('😀', 1)}`, updatedAt: at(7) }),
  events.todoCompleted({ id: cutId, projectId: 'prj_1', completedAt: at(8) }),
  events.commentAdded({
    id: 'cmt_1', todoId: cutId, projectId: 'prj_1', authorId: 'usr_1', body: cut('😀😀', 3),
    mentions: [cut('😀', 1)], reactions: { [cut('🎉', 1)]: 2, ok: 1 }, createdAt: at(9),
  }),
  events.commentEdited({ id: 'cmt_1', body: `${low}${low}`, editedAt: at(10) }),
  events.uiStateSet({ draft: cut('half 😀', 6), selectedProjectId: 'prj_1' }),
  events.searchPerformed({ query: cut('🔍', 1), resultCount: 1, at: at(11) }),
  // NUL, U+2028 and U+2029 in text and in JSON columns.
  events.userRegistered({ id: 'usr_nul', name: 'before\u0000after', email: 'nul@example.com', role: 'guest', createdAt: at(12) }),
  events.userProfileUpdated({
    id: 'usr_nul',
    patch: { settings: { theme: 'light', locale: 'x\u0000y\u2028z\u2029', notifications: { email: false, push: true, digest: 'never' } } },
    updatedAt: at(13),
  }),
  events.todoCreated({
    id: 'todo_\u0000nul', projectId: 'prj_1', text: 'line\u2028sep\u2029para', priority: 0, assigneeId: null,
    tags: ['a\u0000b'], checklist: [], createdAt: at(14),
  }),
  events.todoUpdated({ id: 'todo_\u0000nul', text: 'nul\u0000cut', updatedAt: at(15) }),
  // Numbers at wa-sqlite's int32 boundary and beyond, in real and integer columns.
  ...[
    [2147483647, 2147483647],
    [2147483648, -2147483648],
    [-2147483649, 0],
    [-0, 4],
    [1e21, 3],
    [5e-324, 1],
    [9007199254740993, 2],
    [0.1 + 0.2, 4],
  ].map(([estimate, priority], i) =>
    events.todoCreated({
      id: `todo_num${i}`, projectId: 'prj_1', text: `number ${i}`, priority, estimate, assigneeId: null,
      tags: [], checklist: [], createdAt: at(16 + i),
    }),
  ),
  events.projectCreated({
    id: 'prj_2', name: 'Edges', ownerId: 'usr_1', color: '#2563eb', description: null, budget: -1.5e-7,
    visibility: 'public', meta: { tags: [], starred: true }, createdAt: new Date(-1),
  }),
  // Dates: before 1970, with a dueDate (epoch ms, an integer column) far in the future.
  events.todoCreated({
    id: 'todo_dates', projectId: 'prj_2', text: 'dates', priority: 0, assigneeId: null, tags: [], checklist: [],
    dueDate: new Date(8.64e15), createdAt: new Date(Date.UTC(1969, 6, 20, 20, 17, 40, 1)),
  }),
  events.projectArchived({ id: 'prj_2', archivedAt: new Date(Date.UTC(-1, 0, 1)) }),
  events.uiStateSet({ zoom: -0, draft: 'z\u0000' }),
  events.uiStateSet({ zoom: 1e-7 }),
]
for (const e of log) store.commit(e)
// Let the leader write everything before shutting down.
await new Promise((r) => setTimeout(r, 500))
await store.shutdownPromise()
console.error(`wrote ${log.length} events to ${opts.out}/workspace`)
