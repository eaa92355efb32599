// A notes app after a schema change (corpora/notes-reencoded): its note's meta struct lists
// its fields in another order than the first version did, dropped `color`, and reads `due` as
// a `Schema.Date` where the first version took any string. Old events' args decode with the
// new schema and a JSON column stores them as the new schema encodes them: fields in the new
// order, `color` gone, `due` as toISOString writes it. `notes-v1.mjs` is the first version.
import { Events, makeSchema, Schema, State } from '@livestore/livestore'

const { SQLite } = State

const Meta = Schema.Struct({
  tags: Schema.Array(Schema.String),
  title: Schema.String,
  due: Schema.optional(Schema.Date),
  links: Schema.Array(Schema.Struct({ href: Schema.String, label: Schema.optional(Schema.String) })),
})

export const tables = {
  notes: SQLite.table({
    name: 'notes',
    columns: {
      id: SQLite.text({ primaryKey: true }),
      meta: SQLite.json({ schema: Meta }),
      body: SQLite.text({ default: '' }),
      // New in this version: its state tables differ, so LiveStore rebuilds the state from
      // the log when it first boots.
      pinned: SQLite.boolean({ default: false }),
    },
  }),
}

export const events = {
  noteSaved: Events.synced({
    name: 'NoteSaved',
    schema: Schema.Struct({ id: Schema.String, meta: Meta, body: Schema.String }),
  }),
  noteRetagged: Events.synced({
    name: 'NoteRetagged',
    schema: Schema.Struct({ id: Schema.String, meta: Meta }),
  }),
}

const { notes } = tables

const materializers = State.SQLite.materializers(events, {
  NoteSaved: ({ id, meta, body }) => notes.insert({ id, meta, body }).onConflict('id', 'replace'),
  NoteRetagged: ({ id, meta }) => notes.update({ meta }).where({ id }),
})

export const schema = makeSchema({ events, state: State.SQLite.makeState({ tables, materializers }) })
