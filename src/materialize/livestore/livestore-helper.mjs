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

let common, effect, AST, appModule
try {
  common = await import('@livestore/common')
  effect = await import('@livestore/utils/effect')
  AST = await import('effect/SchemaAST')
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

// --- schema export ----------------------------------------------------------------------
// The JSON Schema of what LiveStore's decoding of an event's args accepts, for the SQL path to
// check `argsJson` against: the encoded side of the Effect schema, with every check JSON Schema
// can state (an Int is `integer`, a `between` a `minimum` and `maximum`, a pattern, a literal),
// a `Schema.Date` string as the `js-date` format (a string `new Date` turns into a valid date),
// and, as `x-unchecked`, what LiveStore checks that no JSON Schema can (a custom filter, a
// decoding that may fail): the SQL path checks less there, and says so. Effect's own
// `JSONSchema.make` drops the last two silently, and its `additionalProperties: false` would
// reject the extra keys LiveStore's decoding ignores. Objects list their keys in the schema's
// order, which is the order LiveStore encodes them in (`| schema` in SQL definitions).
const SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#'
// Transformations whose decoding cannot fail on what their encoded side accepts.
const TOTAL_TRANSFORMATIONS = new Set(['DateFromNumber', 'DateFromString', 'Trim', 'Lowercase', 'Uppercase', 'Capitalize', 'Uncapitalize'])
const MAX_DATE_MS = 8.64e15

const annotation = (get, ast) => {
  const o = get(ast)
  return o._tag === 'Some' ? o.value : undefined
}
// What a check is, in the words of its annotations: a transformation by what its encoded side
// is said to become ("a string to be decoded into a number").
const describe = (ast) => {
  if (ast._tag === 'Transformation') {
    let from = ast.from
    while (from._tag === 'Transformation') from = from.from
    return annotation(AST.getDescriptionAnnotation, from) ?? annotation(AST.getIdentifierAnnotation, ast) ?? 'a transformation'
  }
  return (
    annotation(AST.getDescriptionAnnotation, ast) ??
    annotation(AST.getTitleAnnotation, ast) ??
    annotation(AST.getIdentifierAnnotation, ast) ??
    (ast._tag === 'Refinement' ? 'a filter' : ast._tag)
  )
}

// Whether decoding `ast` transforms anything (so a refinement over it checks the decoded value,
// which the encoded JSON does not show).
const transforms = (ast, seen = new Set()) => {
  if (seen.has(ast)) return false
  seen.add(ast)
  switch (ast._tag) {
    case 'Transformation':
      return true
    case 'Refinement':
      return transforms(ast.from, seen)
    case 'Union':
      return ast.types.some((t) => transforms(t, seen))
    case 'TypeLiteral':
      return ast.propertySignatures.some((p) => transforms(p.type, seen)) || ast.indexSignatures.some((i) => transforms(i.type, seen))
    case 'TupleType':
      return ast.elements.some((e) => transforms(e.type, seen)) || ast.rest.some((r) => transforms(r.type, seen))
    case 'Suspend':
      return transforms(ast.f(), seen)
    default:
      return false
  }
}

const argsJsonSchema = (ast) => {
  const defs = {}
  const suspended = new Map()
  const unchecked = (schema, what) => {
    const known = schema['x-unchecked'] ?? []
    return known.includes(what) ? schema : { ...schema, 'x-unchecked': [...known, what] }
  }
  const go = (ast) => {
    switch (ast._tag) {
      case 'StringKeyword':
        return { type: 'string' }
      case 'NumberKeyword':
        return { type: 'number' }
      case 'BooleanKeyword':
        return { type: 'boolean' }
      case 'UnknownKeyword':
      case 'AnyKeyword':
        return {}
      case 'ObjectKeyword':
        return { type: ['object', 'array'] }
      // JSON holds none of these.
      case 'NeverKeyword':
      case 'UndefinedKeyword':
      case 'VoidKeyword':
      case 'BigIntKeyword':
      case 'SymbolKeyword':
      case 'UniqueSymbol':
        return { not: {} }
      case 'Literal':
        if (ast.literal === null) return { type: 'null' }
        if (typeof ast.literal === 'bigint') return { not: {} }
        return { const: ast.literal }
      case 'Enums':
        return { enum: ast.enums.map(([, v]) => v) }
      case 'TemplateLiteral':
        return { type: 'string', pattern: AST.getTemplateLiteralRegExp(ast).source }
      case 'Union': {
        // `optional(X)` is `X | undefined`: JSON leaves the key out instead.
        const members = ast.types.filter((t) => t._tag !== 'UndefinedKeyword').map(go)
        if (members.length === 0) return { not: {} }
        if (members.length === 1) return members[0]
        // Literals alone: one `enum`, as Effect writes them.
        if (members.every((m) => Object.keys(m).length === 1 && 'const' in m)) return { enum: members.map((m) => m.const) }
        return { anyOf: members }
      }
      case 'TypeLiteral': {
        const schema = { type: 'object', required: [], properties: {} }
        for (const p of ast.propertySignatures) {
          if (typeof p.name !== 'string') continue
          schema.properties[p.name] = go(p.type)
          if (!p.isOptional) schema.required.push(p.name)
        }
        for (const i of ast.indexSignatures) {
          const value = go(i.type)
          const key = AST.encodedAST(i.parameter)
          if (key._tag === 'TemplateLiteral') {
            schema.patternProperties = { ...schema.patternProperties, [AST.getTemplateLiteralRegExp(key).source]: value }
          } else if (key._tag === 'StringKeyword') {
            schema.additionalProperties = value
          } else {
            schema.additionalProperties = unchecked(value, `keys: ${describe(i.parameter)}`)
          }
        }
        return schema
      }
      case 'TupleType': {
        const schema = { type: 'array' }
        const required = ast.elements.filter((e) => !e.isOptional).length
        if (ast.elements.length > 0) {
          schema.items = ast.elements.map((e) => go(e.type))
          if (required > 0) schema.minItems = required
          if (ast.rest.length === 0) schema.additionalItems = false
          else if (ast.rest.length === 1) schema.additionalItems = go(ast.rest[0].type)
          else return unchecked(schema, 'elements after a rest element')
        } else if (ast.rest.length === 1) {
          schema.items = go(ast.rest[0].type)
        } else if (ast.rest.length > 1) {
          return unchecked({ ...schema, items: go(ast.rest[0].type) }, 'elements after a rest element')
        } else {
          schema.maxItems = 0
        }
        return schema
      }
      case 'Refinement': {
        const id = annotation(AST.getSchemaIdAnnotation, ast)
        if (id === Symbol.for('effect/SchemaId/ValidDate') && ast.from._tag === 'Transformation') {
          const from = annotation(AST.getIdentifierAnnotation, ast.from)
          if (from === 'DateFromString') return { ...go(ast.from.from), format: 'js-date' }
          if (from === 'DateFromNumber') return { ...go(ast.from.from), minimum: -MAX_DATE_MS, maximum: MAX_DATE_MS }
        }
        const from = go(ast.from)
        const json = annotation(AST.getJSONSchemaAnnotation, ast)
        const description = annotation(AST.getDescriptionAnnotation, ast)
        if (json !== undefined && !transforms(ast.from)) {
          return description === undefined ? { ...from, ...json } : { ...from, ...json, description }
        }
        return unchecked(from, describe(ast))
      }
      case 'Transformation': {
        const from = go(ast.from)
        if (ast.transformation._tag === 'TypeLiteralTransformation') return from
        const id = annotation(AST.getIdentifierAnnotation, ast)
        if (id !== undefined && TOTAL_TRANSFORMATIONS.has(id)) return from
        if (ast.transformation._tag === 'ComposeTransformation') {
          return unchecked(from, 'the decoded value, checked by the schema it is composed with')
        }
        return unchecked(from, describe(ast))
      }
      case 'Declaration':
        return unchecked({}, describe(ast))
      case 'Suspend': {
        let name = suspended.get(ast)
        if (name === undefined) {
          name = `${annotation(AST.getIdentifierAnnotation, ast) ?? 'Recursive'}${suspended.size + 1}`
          suspended.set(ast, name)
          defs[name] = go(ast.f())
        }
        return { $ref: `#/$defs/${name}` }
      }
      default:
        return unchecked({}, describe(ast))
    }
  }
  const schema = go(ast)
  return Object.keys(defs).length === 0 ? { $schema: SCHEMA_DIALECT, ...schema } : { $schema: SCHEMA_DIALECT, $defs: defs, ...schema }
}

// How a column's schema stores a value, in the words of SQL definitions' column kinds: what
// `State.SQLite.boolean`, `json`, `datetime` and `datetimeInteger` make (or a schema doing the
// same), `plain` for a value stored as given, `other` for an encoding no kind states.
const columnKind = (column) => {
  let ast = column.schema.ast
  // A nullable column's schema is `NullOr(schema)`.
  if (ast._tag === 'Union') {
    const members = ast.types.filter((t) => !(t._tag === 'Literal' && t.literal === null))
    if (members.length === 1) ast = members[0]
  }
  const type = AST.typeAST(ast)
  const isDate = type._tag === 'Declaration' && annotation(AST.getIdentifierAnnotation, type)?.startsWith('DateFromSelf')
  const parsesJson = (node) =>
    node._tag === 'Transformation' &&
    (annotation(AST.getTitleAnnotation, node) === 'parseJson' || parsesJson(node.from))
  if (isDate || (type._tag === 'Refinement' && AST.typeAST(type.from)._tag === 'Declaration')) {
    if (column.columnType === 'text') return 'datetime'
    if (column.columnType === 'integer') return 'datetimeInteger'
  }
  if (column.columnType === 'integer' && type._tag === 'BooleanKeyword') return 'boolean'
  if (column.columnType === 'text' && parsesJson(ast)) return 'json'
  return AST.encodedAST(ast) === AST.typeAST(ast) || !transforms(ast) ? 'plain' : 'other'
}

const exportSchemas = () => {
  const events = {}
  for (const name of [...schema.eventsDefsMap.keys()].sort()) {
    // argsJson holds the encoded side of the event's schema.
    events[name] = argsJsonSchema(schema.eventsDefsMap.get(name).schema.ast)
  }
  const clientDocuments = [...schema.state.sqlite.tables.entries()]
    .filter(([, def]) => def.options?.isClientDocumentTable === true)
    .map(([name, def]) => ({
      name,
      default: def.default ?? null,
      valueSchema: def.valueSchema === undefined ? null : argsJsonSchema(def.valueSchema.ast),
      // The value's fields, which the derived …Set merges one by one (none: set whole).
      keys: def.valueSchema === undefined ? [] : Schema.getResolvedPropertySignatures(def.valueSchema).map((p) => String(p.name)),
      partialSet: def[Symbol.for('livestore.ClientDocumentTableDef')]?.options?.partialSet ?? true,
    }))
  const tables = [...schema.state.sqlite.tables.entries()]
    .filter(([n, def]) => !n.startsWith('__livestore') && def.options?.isClientDocumentTable !== true)
    .map(([name, def]) => ({
      name,
      columns: Object.entries(def.sqliteDef.columns).map(([column, c]) => ({ name: column, kind: columnKind(c) })),
    }))
  return { type: 'schemas', events, clientDocuments, tables }
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
