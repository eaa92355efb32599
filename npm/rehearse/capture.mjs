// rehearse/capture: a backup package taken from inside a running LiveStore app, in Node.js or
// in a browser page, where LiveStore keeps its databases in OPFS out of reach of any file copy.
// The package is the one `rehearse export` writes (eventlog.db, state.db, manifest.json), so
// `rehearse preflight` and `rehearse restore` take it as they take an export.
//
// Both databases come from LiveStore's leader thread, the one that persists them: the state
// with `leaderThread.export`, the log with `leaderThread.getEventlogData`. The app may commit
// while they are read, so the log is read before and after the state and the set is kept only
// when the two reads are the same and the state holds no event the log lacks; otherwise it is
// read again. The manifest describes these very bytes (counts, head, checksums), read with a
// small reader of SQLite's file format (sqlite-read.mjs).

import { StoreInternalsSymbol } from '@livestore/livestore'
import { Effect } from 'effect'

import { openImage, rows } from './sqlite-read.mjs'

/** This package's version, written by the script that assembles the npm packages. */
const VERSION = '0.0.0-dev'

/** LiveStore 0.4's storage format, as in its file names (`eventlog@6.db`). */
const STORAGE_FORMAT = 6

const ATTEMPTS = 10

/**
 * Takes a backup package from a running store.
 *
 * @param {import('@livestore/livestore').Store} store the app's store
 * @param {{ appVersion?: string, createdAt?: Date }} [options] `appVersion` goes into the
 *   manifest (`rehearse preflight --min-app-version` checks it); `createdAt` defaults to now
 * @returns {Promise<{ manifest: object, files: Map<string, Uint8Array>, attempts: number }>} the
 *   package's files by name (`eventlog.db`, `state.db`, `manifest.json`), its manifest, and how
 *   many reads it took to find the log unchanged around the state
 */
export async function capture(store, options = {}) {
  const internals = store?.[StoreInternalsSymbol]
  const leader = internals?.clientSession?.leaderThread
  if (!leader?.export || !leader?.getEventlogData) {
    throw new TypeError('capture(store): not a running LiveStore 0.4 store (it has no leader thread to export from)')
  }
  let taken
  let attempt = 0
  while (!taken && attempt < ATTEMPTS) {
    attempt++
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 50 * attempt))
    const before = await Effect.runPromise(leader.getEventlogData)
    const state = await Effect.runPromise(leader.export)
    const after = await Effect.runPromise(leader.getEventlogData)
    if (!sameBytes(before, after)) continue
    const log = describeLog(after)
    const stateHead = lastChangeset(state)
    if (stateHead && log.lastEvent && compareSeq(stateHead, log.lastEvent) > 0) continue
    taken = { eventlog: new Uint8Array(after), state: new Uint8Array(state), log }
  }
  if (!taken) {
    throw new Error(
      `capture(store): the store kept changing while it was read (${ATTEMPTS} attempts); retry when the app is idle`,
    )
  }

  const schema = store.schema
  const stateSchemaHash =
    schema.state.sqlite.migrations.strategy === 'manual' ? 'fixed' : String(schema.state.sqlite.hash)
  const files = [
    { path: 'eventlog.db', role: 'eventlog', data: taken.eventlog },
    { path: 'state.db', role: 'state', data: taken.state },
  ]
  const entries = []
  for (const f of files) {
    entries.push({ path: f.path, role: f.role, bytes: f.data.byteLength, sha256: await sha256(f.data) })
  }
  const { log } = taken
  const manifest = {
    manifestVersion: 1,
    storeId: store.storeId,
    storageFormatVersion: STORAGE_FORMAT,
    stateSchemaHash,
    syncHead: log.syncHead,
    ...(log.backendId != null ? { backendId: log.backendId } : {}),
    lastEvent: log.lastEvent,
    events: log.events,
    eventCounts: log.eventCounts,
    appVersion: options.appVersion ?? null,
    createdAt: (options.createdAt ?? new Date()).toISOString(),
    tool: { name: 'rehearse/capture', version: VERSION },
    files: entries,
  }
  const out = new Map(files.map((f) => [f.path, f.data]))
  out.set('manifest.json', new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`))
  return { manifest, files: out, attempts: attempt }
}

/**
 * The package as one tar archive (`tar -xf` it into a directory for `rehearse preflight`):
 * what a browser page offers for download.
 *
 * @param {{ files: Map<string, Uint8Array> }} pkg
 * @param {string} [dir] the directory the archive unpacks into
 */
export function toTar(pkg, dir = 'rehearse-package') {
  const blocks = []
  const mtime = Math.floor(Date.now() / 1000)
  const entry = (name, data, type) => {
    const header = new Uint8Array(512)
    const put = (text, at, len) => header.set(new TextEncoder().encode(text).subarray(0, len), at)
    const octal = (n, len) => n.toString(8).padStart(len - 1, '0')
    put(name, 0, 100)
    put(octal(type === '5' ? 0o755 : 0o644, 8), 100, 8)
    put(octal(0, 8), 108, 8)
    put(octal(0, 8), 116, 8)
    put(octal(data.byteLength, 12), 124, 12)
    put(octal(mtime, 12), 136, 12)
    put('        ', 148, 8)
    put(type, 156, 1)
    put('ustar\u000000', 257, 8)
    let sum = 0
    for (const b of header) sum += b
    put(`${octal(sum, 7)}\u0000`, 148, 8)
    blocks.push(header, data, new Uint8Array((512 - (data.byteLength % 512)) % 512))
  }
  entry(`${dir}/`, new Uint8Array(0), '5')
  for (const [name, data] of pkg.files) entry(`${dir}/${name}`, data, '0')
  blocks.push(new Uint8Array(1024))
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.byteLength, 0))
  let at = 0
  for (const b of blocks) {
    out.set(b, at)
    at += b.byteLength
  }
  return out
}

/**
 * Browser: offers the package for download as a tar archive.
 *
 * @param {{ files: Map<string, Uint8Array>, manifest: { storeId: string } }} pkg
 * @param {string} [fileName] default `<storeId>-<time>.rehearse.tar`
 */
export function download(pkg, fileName) {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, 'Z')
  const base = fileName ?? `${pkg.manifest.storeId}-${stamp}.rehearse.tar`
  const blob = new Blob([toTar(pkg, base.replace(/\.tar$/, ''))], { type: 'application/x-tar' })
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = base
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
  return blob
}

/** What the manifest says of the log, as `rehearse export` reads it from its copy. */
export function describeLog(bytes) {
  const db = openImage(bytes, 'the event log')
  const events = rows(db, 'eventlog')
  if (!events) db.fail('it has no eventlog table')
  const eventCounts = {}
  let lastEvent = null
  for (const [, v] of events) {
    const seq = { global: v[0], client: v[1], rebaseGeneration: v[2] }
    if (!lastEvent || compareSeq(seq, lastEvent) > 0) lastEvent = seq
    if (typeof v[6] === 'string') eventCounts[v[6]] = (eventCounts[v[6]] ?? 0) + 1
  }
  const sorted = Object.fromEntries(Object.entries(eventCounts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  // `head` is the table's INTEGER PRIMARY KEY, stored as the rowid; the highest one counts.
  const status = (rows(db, '__livestore_sync_status') ?? []).sort(([a], [b]) => b - a)[0]
  return {
    events: events.length,
    eventCounts: sorted,
    lastEvent,
    syncHead: status ? status[0] : null,
    backendId: status ? (status[1][1] ?? null) : null,
  }
}

/** The last event whose changes the state database records, if it records any. */
function lastChangeset(bytes) {
  const db = openImage(bytes, 'the state database')
  let last = null
  for (const [, v] of rows(db, '__livestore_session_changeset') ?? []) {
    const seq = { global: v[0], client: v[1], rebaseGeneration: v[2] }
    if (!last || compareSeq(seq, last) > 0) last = seq
  }
  return last
}

function compareSeq(a, b) {
  return a.global - b.global || a.client - b.client || a.rebaseGeneration - b.rebaseGeneration
}

function sameBytes(a, b) {
  if (a.byteLength !== b.byteLength) return false
  const x = new Uint8Array(a)
  const y = new Uint8Array(b)
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

async function sha256(data) {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', data)
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}
