// An app whose client documents hold values that are not objects, and objects without fields
// (corpora/prefs-documents): a literal, a string, a number, an array, a nullable string and a
// record, beside a struct. LiveStore's derived `…Set` materializer replaces such a document
// whole (it merges field by field only a value schema with fields), and inserts the default
// when the value is null.
import { Events, makeSchema, Schema, State } from '@livestore/livestore'

const { SQLite } = State
const doc = (name, schema, value, options = {}) =>
  SQLite.clientDocument({ name, schema, default: { id: 'main', value }, ...options })

export const tables = {
  theme: doc('theme', Schema.Literal('light', 'dark', 'system'), 'system'),
  draft: doc('draft', Schema.String, ''),
  zoom: doc('zoom', Schema.Number, 1),
  recent: doc('recent', Schema.Array(Schema.String), []),
  // A null value sets null, but inserts the default.
  pinned: doc('pinned', Schema.NullOr(Schema.String), 'home'),
  filters: doc('filters', Schema.Record({ key: Schema.String, value: Schema.Boolean }), { open: true }),
  layout: doc('layout', Schema.Struct({ columns: Schema.Int, dense: Schema.Boolean, title: Schema.optional(Schema.String) }), {
    columns: 2,
    dense: false,
  }),
}

// Only the derived `…Set` events.
export const events = Object.fromEntries(Object.values(tables).map((t) => [t.set.name, t.set]))

const materializers = State.SQLite.materializers(events, {})

export const schema = makeSchema({ events, state: State.SQLite.makeState({ tables, materializers }) })
