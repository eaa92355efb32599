#!/usr/bin/env node
// Takes backup packages with rehearse/capture from a real LiveStore store while the app keeps
// committing to it, as an app's own backup job would: every package must pre-flight `go`.
//
//   node capture-while-writing.mjs --out DIR [--events N] [--captures K]
//
// DIR/store/workspace/ is the store; DIR/pkg-<i>/ the packages (the last taken after the writes
// ended); DIR/pkg-tar.tar one of them as the browser path's archive; DIR/summary.json what was
// taken (LiveStore's own logging shares stdout, so the summary is a file).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

import { makeAdapter } from '@livestore/adapter-node'
import { createStorePromise } from '@livestore/livestore'
import { capture, toTar, writePackage } from 'rehearse/capture'

import { makeWorkspaceSchema } from './schema.mjs'

const { values: opts } = parseArgs({
  options: {
    out: { type: 'string' },
    events: { type: 'string', default: '1200' },
    captures: { type: 'string', default: '6' },
  },
})
if (!opts.out) throw new Error('--out DIR is required')
const N = Number(opts.events)
const CAPTURES = Number(opts.captures)
const out = path.resolve(opts.out)
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })

const { schema, events } = makeWorkspaceSchema()
const adapter = makeAdapter({
  storage: { type: 'fs', baseDirectory: path.join(out, 'store') },
  clientId: 'capture-client',
  sessionId: 'static',
})
const store = await createStorePromise({ adapter, schema, storeId: 'workspace', disableDevtools: true })

let clock = Date.parse('2024-03-01T08:00:00.000Z')
const at = () => new Date((clock += 61_000))
const owner = 'usr_owner0000'
const project = 'prj_capture00'
const eventAt = (i) => {
  if (i === 0) return events.userRegistered({ id: owner, name: 'Ada Lovelace', email: 'ada@example.com', role: 'owner', createdAt: at() })
  if (i === 1) {
    return events.projectCreated({
      id: project, name: 'Backups', ownerId: owner, color: '#2563eb', description: null,
      visibility: 'team', meta: { tags: ['ops'], starred: false }, createdAt: at(),
    })
  }
  const todo = `todo_${String(Math.floor(i / 2)).padStart(8, '0')}`
  return i % 2 === 0
    ? events.todoCreatedV1({ id: todo, projectId: project, text: `Task ${i}`, createdAt: at() })
    : events.todoCompleted({ id: `todo_${String(Math.floor((i - 1) / 2)).padStart(8, '0')}`, projectId: project, completedAt: at() })
}

let committed = 0
const writer = (async () => {
  while (committed < N) {
    const burst = Math.min(N - committed, 1 + (committed % 7))
    for (let j = 0; j < burst; j++) store.commit(eventAt(committed++))
    await new Promise((resolve) => setImmediate(resolve))
  }
})()

const packages = []
const take = async (name) => {
  const pkg = await capture(store, { appVersion: '1.4.2' })
  const dir = await writePackage(pkg, path.join(out, name))
  packages.push({ dir, events: pkg.manifest.events, attempts: pkg.attempts, committedWhenDone: committed })
  return pkg
}
for (let i = 0; i < CAPTURES; i++) {
  await new Promise((resolve) => setTimeout(resolve, 40))
  await take(`pkg-${i}`)
}
await writer
// Let the leader persist what the session committed, then take the final package.
for (let i = 0; i < 400; i++) {
  const leaderEvents = (await capture(store)).manifest.events
  if (leaderEvents >= N) break
  await new Promise((resolve) => setTimeout(resolve, 25))
}
const last = await take(`pkg-${CAPTURES}`)
writeFileSync(path.join(out, 'pkg-tar.tar'), toTar(last, 'pkg-tar'))
await store.shutdownPromise()
writeFileSync(path.join(out, 'summary.json'), `${JSON.stringify({ committed, packages }, null, 2)}\n`)
