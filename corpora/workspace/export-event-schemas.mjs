#!/usr/bin/env node
// Exports the JSON Schema of every event's encoded args from the real "workspace" app
// (tests/livestore/schema.mjs) with Effect's own JSONSchema.make, one
// <event name>.json per event, as `rehearse schema export` will do for any app.
//
// Run it beside the generator's node_modules:
//   cp export-event-schemas.mjs <gen>/ && cd <gen> && node export-event-schemas.mjs <out dir>
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'

import { JSONSchema, Schema } from 'effect'

import { makeWorkspaceSchema } from './schema.mjs'

const out = process.argv[2] ?? 'events'
mkdirSync(out, { recursive: true })
const { schema } = makeWorkspaceSchema()
for (const [name, def] of [...schema.eventsDefsMap.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
  // The args as stored in argsJson are the *encoded* side of the event's schema.
  const json = JSONSchema.make(Schema.encodedSchema(def.schema))
  writeFileSync(path.join(out, `${name}.json`), JSON.stringify(json, null, 2) + '\n')
}
console.error(`wrote ${schema.eventsDefsMap.size} event schemas to ${out}`)
