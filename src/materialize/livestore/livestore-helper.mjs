// rehearse's LiveStore helper: runs an app's own materializers with the app's own LiveStore.
//
// rehearse writes this file to a temporary directory beside a `node_modules` link to the app's
// packages and talks to it over stdin/stdout (protocol version 1, README "The LiveStore
// plugin", schemas/plugin-protocol.schema.json):
//
//   rehearse -> helper  one JSON message per line
//   helper -> rehearse  one JSON message per line, after the prefix "\x1eRH1 ": anything else
//                       on stdout (LiveStore's own logging) is not a message
//
// Everything after start-up is synchronous: the materializers, LiveStore's turning their
// results into SQL, and `ctx.query`, which asks rehearse for rows and blocks until they come.
import fs from 'node:fs'
import module from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const PROTOCOL_VERSION = 1
const PREFIX = '\x1eRH1 '
const sleeper = new Int32Array(new SharedArrayBuffer(4))

// Only `flush` writes to fd 1; whatever else writes to stdout goes to stderr. Messages are
// queued and written together (one system call per chunk of events, not per event), and
// flushed before the helper waits for anything.
let outbox = []
const send = (msg) => {
  outbox.push(PREFIX + JSON.stringify(msg) + '\n')
  // A few at a time, so that rehearse applies these while the helper works on the next.
  if (outbox.length >= 16) flush()
}
function flush() {
  if (outbox.length === 0) return
  let buf = Buffer.from(outbox.join(''))
  outbox = []
  while (buf.length > 0) {
    let n
    try {
      n = writeSync(1, buf)
    } catch (e) {
      // Node makes its stdout pipe non-blocking; a full pipe means rehearse is busy elsewhere.
      if (e.code !== 'EAGAIN') throw e
      Atomics.wait(sleeper, 0, 0, 1)
      continue
    }
    buf = buf.subarray(n)
  }
}
const writeSync = fs.writeSync
process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb)
console.log = console.info = console.debug = (...args) => console.error(...args)
fs.writeSync = (fd, ...rest) => writeSync(fd === 1 ? 2 : fd, ...rest)
module.syncBuiltinESMExports()

// Lines from fd 0, read synchronously (after flushing what is queued: rehearse may be
// waiting for it).
// The bytes read past the last line returned, and the earlier pieces of the line being read
// (none with a newline): a line is joined once, when its end arrives, so a message of many
// megabytes (events with large args) costs one copy, not one per read.
let rest = Buffer.alloc(0)
let pieces = []
const readLine = () => {
  flush()
  for (;;) {
    const nl = rest.indexOf(10)
    if (nl >= 0) {
      pieces.push(rest.subarray(0, nl))
      const line = (pieces.length === 1 ? pieces[0] : Buffer.concat(pieces)).toString('utf8')
      pieces = []
      rest = rest.subarray(nl + 1)
      return line
    }
    if (rest.length > 0) pieces.push(rest)
    rest = Buffer.alloc(0)
    const chunk = Buffer.allocUnsafe(1 << 16)
    let n
    try {
      n = fs.readSync(0, chunk, 0, chunk.length, null)
    } catch (e) {
      if (e.code === 'EAGAIN') {
        Atomics.wait(sleeper, 0, 0, 1)
        continue
      }
      if (e.code === 'EOF') return null
      throw e
    }
    if (n === 0) return null
    rest = chunk.subarray(0, n)
  }
}

const fail = (message) => {
  send({ type: 'fatal', message })
  flush()
  process.exit(3)
}

// --- values -----------------------------------------------------------------------------
// A bind value as wa-sqlite binds it: a number is an integer only when it is an int32.
const encodeValue = (v) => {
  if (v === undefined) return ['u']
  if (v === null) return ['n']
  switch (typeof v) {
    case 'number':
      if (Number.isNaN(v) || !Number.isFinite(v)) return ['f', String(v)]
      return v === (v | 0) ? ['i', v] : ['f', v]
    case 'bigint':
      return ['I', v.toString()]
    case 'boolean':
      return ['i', v ? 1 : 0]
    case 'string':
      return ['s', v]
    default:
      if (v instanceof Uint8Array) return ['b', Buffer.from(v).toString('base64')]
      if (Array.isArray(v)) return ['b', Buffer.from(Uint8Array.from(v)).toString('base64')]
      throw new Error(`cannot bind a value of type ${Object.prototype.toString.call(v)}`)
  }
}

const encodeBinds = (binds) => {
  if (binds === undefined || binds === null) return { positional: [] }
  if (Array.isArray(binds)) return { positional: binds.map(encodeValue) }
  const named = {}
  for (const [k, v] of Object.entries(binds)) named[k] = encodeValue(v)
  return { named }
}

// A row value from rehearse: integers, reals, text and null as JSON; blobs as {"$blob": base64}.
const decodeRow = (row) => {
  for (const k of Object.keys(row)) {
    const v = row[k]
    if (v !== null && typeof v === 'object' && typeof v.$blob === 'string') {
      row[k] = new Uint8Array(Buffer.from(v.$blob, 'base64'))
    }
  }
  return row
}

// --- start-up ---------------------------------------------------------------------------
const helloLine = readLine()
if (helloLine === null) process.exit(0)
const hello = JSON.parse(helloLine)
if (hello.type !== 'hello' || hello.version !== PROTOCOL_VERSION) {
  fail(`this helper speaks protocol ${PROTOCOL_VERSION}; rehearse sent ${helloLine.slice(0, 200)}`)
}

// LiveStore builds a new Effect schema for every update and every client-document set
// (`Schema.partial(table.rowSchema)`, `Schema.parseJson(valueSchema)`), and Effect compiles a
// new encoder for each new schema: more than half of LiveStore's own time per event. Both are
// pure functions of the schema they are given, so the helper rewrites effect's Schema module as
// it loads to have them remember their result per schema. LiveStore's code is unchanged and so
// are its statements. REHEARSE_PLUGIN_MEMO: `auto` (the default) where Node.js rewrites modules
// in this thread (module.registerHooks: 22.15, 23.5 and later); `on` also through Node.js 20's
// loader thread (module.register), which costs about a second at start; `off` runs Effect
// exactly as installed.
//
// Self-contained: Node.js 20's loader thread gets this function's source.
function memoizeEffectSchema(url, loaded) {
  if (!url.endsWith('/effect/dist/esm/Schema.js') || loaded.format !== 'module' || loaded.source == null) {
    return loaded
  }
  let source = typeof loaded.source === 'string' ? loaded.source : new TextDecoder().decode(loaded.source)
  let rewritten = false
  for (const name of ['parseJson', 'partial']) {
    // A one-line definition, as Effect's build writes them: wrapped where it stands, so line
    // numbers in Effect's stack traces stay true.
    source = source.replace(new RegExp(`^export const ${name} = (.+);$`, 'm'), (_, definition) => {
      rewritten = true
      return `export const ${name} = rehearse$memo(${definition});`
    })
  }
  if (!rewritten) return loaded
  // Only a call with one schema (a class) is remembered, under that schema.
  source += `
function rehearse$memo(f) {
  const results = new WeakMap()
  return function (schema) {
    if (arguments.length !== 1 || typeof schema !== 'function') return f.apply(this, arguments)
    let result = results.get(schema)
    if (result === undefined) {
      result = f(schema)
      results.set(schema, result)
    }
    return result
  }
}
`
  return { ...loaded, source }
}

const memo = process.env.REHEARSE_PLUGIN_MEMO ?? 'auto'
if (!['auto', 'on', 'off'].includes(memo)) {
  fail(`REHEARSE_PLUGIN_MEMO is ${JSON.stringify(memo)}; it may be auto, on or off`)
}
if (memo !== 'off' && typeof module.registerHooks === 'function') {
  module.registerHooks({ load: (url, context, nextLoad) => memoizeEffectSchema(url, nextLoad(url, context)) })
} else if (memo === 'on' && typeof module.register === 'function') {
  const hooks = `${memoizeEffectSchema}
export async function load(url, context, nextLoad) {
  return memoizeEffectSchema(url, await nextLoad(url, context))
}`
  module.register(`data:text/javascript,${encodeURIComponent(hooks)}`)
}

let common, effect, JSONSchema, appModule
try {
  common = await import('@livestore/common')
  effect = await import('@livestore/utils/effect')
  JSONSchema = await import('effect/JSONSchema')
} catch (e) {
  fail(
    `cannot load LiveStore from the app's node_modules (${hello.nodeModules}): ${e?.message ?? e}. Install the app's dependencies first (npm ci).`,
  )
}
try {
  appModule = await import(pathToFileURL(hello.module).href)
} catch (e) {
  fail(`cannot load ${hello.module}: ${e?.stack ?? e}`)
}
const { Schema, ParseResult, Either, Effect } = effect

// What the app's Effect now remembers, asked of Effect itself (the rewrite may have found other
// definitions, or run in another thread).
const probe = Schema.Struct({ rehearse: Schema.String })
const memoized = Object.entries({ 'Schema.parseJson': Schema.parseJson, 'Schema.partial': Schema.partial })
  .filter(([, construct]) => construct(probe) === construct(probe))
  .map(([name]) => name)

const isSchema = (v) => v !== null && typeof v === 'object' && v.eventsDefsMap instanceof Map && v.state?.sqlite?.tables instanceof Map
// An app may export a function that makes its schema (a factory) where the schema is
// expected; the helper does not call it (it may want arguments, or do more than build the
// schema), but says so: "exports no schema" alone sends one looking for a typo. Said in the
// `fatal` that ends the helper, so rehearse reports it once, however many helpers started.
const isFunction = (name) => typeof appModule[name] === 'function'
const factoryHint = (name) =>
  `${name === 'default' ? 'the default export' : `\`${name}\``} is a function; export the schema it returns`
let schema
if (hello.exportName) {
  schema = appModule[hello.exportName]
  if (!isSchema(schema)) {
    const hint = isFunction(hello.exportName) ? `: ${factoryHint(hello.exportName)}` : ''
    fail(`${hello.module} exports no LiveStore schema named ${JSON.stringify(hello.exportName)}${hint}`)
  }
} else {
  schema = [appModule.schema, appModule.default, ...Object.values(appModule)].find(isSchema)
  if (schema === undefined) {
    // The factory is the export where the schema is looked for first, or the only function.
    const functions = Object.keys(appModule).filter(isFunction)
    const factory = ['schema', 'default'].find(isFunction) ?? (functions.length === 1 ? functions[0] : undefined)
    const hint =
      factory === undefined
        ? `; export it as \`schema\`, or name the export: livestore:${hello.module}#<name>`
        : `: ${factoryHint(factory)}`
    fail(`${hello.module} exports no LiveStore schema (the value makeSchema returns)${hint}`)
  }
}

// The state DDL exactly as LiveStore creates it: LiveStore's own migration, run against a
// database that only records what it is asked to execute.
const stateDdl = () => {
  const executed = []
  const db = {
    prepare: (sql) => ({
      execute: () => executed.push(sql),
      select: () => [],
      finalize: () => {},
    }),
    execute: (sql) => executed.push(sql),
    select: () => [],
  }
  Effect.runSync(common.migrateDb({ db, schema }))
  const user = new Set([...schema.state.sqlite.tables.keys()].filter((n) => !n.startsWith('__livestore')))
  return executed
    .map((s) => s.trim())
    .filter((s) => {
      const m = /^create\s+(?:unique\s+)?(?:table|index)\s+if\s+not\s+exists\s+"([^"]+)"(?:\s+on\s+"([^"]+)")?/i.exec(s)
      if (m === null) return false
      return user.has(m[2] ?? m[1])
    })
}

const tables = () =>
  [...schema.state.sqlite.tables.entries()]
    .filter(([n]) => !n.startsWith('__livestore'))
    .map(([name, def]) => ({
      name,
      columns: Object.keys(def.sqliteDef.columns),
      clientDocument: def.options?.isClientDocumentTable === true,
    }))

send({
  type: 'ready',
  version: PROTOCOL_VERSION,
  livestoreVersion: common.liveStoreVersion ?? null,
  stateSchemaHash: String(schema.state.sqlite.hash),
  events: [...schema.eventsDefsMap.keys()].sort(),
  tables: tables(),
  ddl: stateDdl(),
  memoized,
})
flush()

// --- events ---------------------------------------------------------------------------
let inFlight = null
// The event being materialized, written where rehearse can read it if this process dies or
// hangs: answers are sent in groups, so the last answer does not say how far the helper got.
const progressFd = fs.openSync(hello.progressFile, 'r+')
const progress = Buffer.alloc(8)
const mark = (i) => {
  progress.writeDoubleLE(i, 0)
  writeSync(progressFd, progress, 0, 8, 0)
}

// Events rehearse announced while a query was waiting for its rows: handled after the
// current batch, in order.
const batches = []

const query = (sql, bindValues) => {
  send({ type: 'query', i: inFlight, sql, binds: encodeBinds(bindValues) })
  let reply
  for (;;) {
    const line = readLine()
    if (line === null) process.exit(0)
    reply = JSON.parse(line)
    if (reply.type !== 'events') break
    batches.push(reply.events)
  }
  if (reply.type === 'rows') return reply.rows.map(decodeRow)
  if (reply.type === 'query-error') throw new Error(`ctx.query failed: ${reply.message}`)
  fail(`expected rows for the query of event ${inFlight}, got ${JSON.stringify(reply).slice(0, 200)}`)
}
const dbState = {
  select: (sql, bindValues) => query(sql, bindValues),
  execute: () => {
    throw new Error('a materializer may not write through ctx; return statements instead')
  },
  debug: {},
}

const seqNum = ([global, client, rebaseGeneration]) => ({ global, client, rebaseGeneration })

const materialize = (ev) => {
  inFlight = ev.i
  mark(ev.i)
  const eventDef = schema.eventsDefsMap.get(ev.name)
  const materializer = schema.state.materializers.get(ev.name)
  if (eventDef === undefined || materializer === undefined) {
    return {
      type: 'unknown',
      i: ev.i,
      reason: eventDef === undefined ? 'event-definition-missing' : 'materializer-missing',
    }
  }
  let args
  try {
    args = JSON.parse(ev.args)
  } catch (e) {
    return { type: 'invalid-args', i: ev.i, issues: [{ path: [], message: `argsJson is not JSON: ${e.message}` }] }
  }
  const encoded = {
    name: ev.name,
    args,
    seqNum: seqNum(ev.seq),
    parentSeqNum: seqNum(ev.parent),
    clientId: ev.clientId,
    sessionId: ev.sessionId,
  }
  try {
    // LiveStore's leader path: the encoded event, decoded again inside, as rematerialization does.
    const statements = common.getExecStatementsFromMaterializer({
      eventDef,
      materializer,
      dbState,
      event: { decoded: undefined, encoded },
    })
    return {
      type: 'result',
      i: ev.i,
      statements: statements.map((s) => ({
        sql: s.statementSql,
        binds: encodeBinds(s.bindValues),
        writeTables: s.writeTables === undefined ? null : [...s.writeTables].sort(),
      })),
    }
  } catch (e) {
    // LiveStore decodes the args first; a parse error is theirs only if they do not decode.
    if (ParseResult.isParseError(e)) {
      const decoded = Schema.decodeUnknownEither(eventDef.schema)(args)
      if (Either.isLeft(decoded)) {
        const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map((x) => ({
          path: x.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
          message: x.message,
        }))
        return { type: 'invalid-args', i: ev.i, issues }
      }
    }
    return { type: 'error', i: ev.i, message: String(e?.message ?? e), stack: e?.stack ?? null }
  }
}

const exportSchemas = () => {
  const events = {}
  for (const name of [...schema.eventsDefsMap.keys()].sort()) {
    const def = schema.eventsDefsMap.get(name)
    // argsJson holds the encoded side of the event's schema.
    events[name] = JSONSchema.make(Schema.encodedSchema(def.schema))
  }
  const clientDocuments = [...schema.state.sqlite.tables.entries()]
    .filter(([, def]) => def.options?.isClientDocumentTable === true)
    .map(([name, def]) => ({
      name,
      default: def.default ?? null,
      valueSchema: def.valueSchema === undefined ? null : JSONSchema.make(Schema.encodedSchema(def.valueSchema)),
    }))
  return { type: 'schemas', events, clientDocuments }
}

for (;;) {
  while (batches.length > 0) {
    for (const ev of batches.shift()) send(materialize(ev))
    inFlight = null
    flush()
  }
  const line = readLine()
  if (line === null) process.exit(0)
  let msg
  try {
    msg = JSON.parse(line)
  } catch {
    fail(`not a message: ${line.slice(0, 200)}`)
  }
  switch (msg.type) {
    case 'events':
      for (const ev of msg.events) send(materialize(ev))
      inFlight = null
      flush()
      break
    case 'export-schemas':
      send(exportSchemas())
      flush()
      break
    case 'bye':
      flush()
      process.exit(0)
      break
    default:
      fail(`unknown message type ${JSON.stringify(msg.type)}`)
  }
}
