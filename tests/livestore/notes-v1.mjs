// The first version of the notes app (notes.mjs is the next): the meta struct's fields in
// another order, a `color` the next version drops, and `due` any string.
import { Events, makeSchema, Schema, State } from '@livestore/livestore'

const { SQLite } = State

const Meta = Schema.Struct({
  title: Schema.String,
  color: Schema.optional(Schema.String),
  due: Schema.optional(Schema.String),
  links: Schema.Array(Schema.Struct({ label: Schema.optional(Schema.String), href: Schema.String })),
  tags: Schema.Array(Schema.String),
})

export const tables = {
  notes: SQLite.table({
    name: 'notes',
    columns: {
      id: SQLite.text({ primaryKey: true }),
      meta: SQLite.json({ schema: Meta }),
      body: SQLite.text({ default: '' }),
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
