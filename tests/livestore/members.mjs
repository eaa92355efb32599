// A members app whose upserts set some columns on conflict only when the event carries them
// (corpora/members-upsert): `...(isAdmin === undefined ? {} : { isAdmin })` keeps what is
// there, where `{ role }` with role undefined sets the column from the insert
// (`excluded."role"`, LiveStore's query builder for a key whose value is undefined). Also a
// composite conflict target, an AUTOINCREMENT table, and statements chosen by a presence test.
import { Events, makeSchema, Schema, State } from '@livestore/livestore'

const { SQLite } = State

export const tables = {
  members: SQLite.table({
    name: 'members',
    columns: {
      id: SQLite.text({ primaryKey: true }),
      name: SQLite.text({ default: '' }),
      email: SQLite.text({ nullable: true }),
      isAdmin: SQLite.boolean({ default: false }),
      joinedAt: SQLite.datetime(),
      updatedAt: SQLite.datetime({ nullable: true }),
    },
  }),
  memberships: SQLite.table({
    name: 'memberships',
    columns: {
      teamId: SQLite.text({ primaryKey: true }),
      memberId: SQLite.text({ primaryKey: true }),
      role: SQLite.text({ default: 'member' }),
      since: SQLite.datetime(),
    },
  }),
  audit: SQLite.table({
    name: 'audit',
    columns: {
      // Optional in an insert only when nullable (LiveStore 0.4's insert schema).
      seq: SQLite.integer({ primaryKey: true, autoIncrement: true, nullable: true }),
      memberId: SQLite.text(),
      action: SQLite.text(),
      at: SQLite.datetime(),
    },
  }),
}

export const events = {
  memberUpserted: Events.synced({
    name: 'MemberUpserted',
    schema: Schema.Struct({
      id: Schema.String,
      name: Schema.String,
      email: Schema.optional(Schema.NullOr(Schema.String)),
      isAdmin: Schema.optional(Schema.Boolean),
      at: Schema.Date,
    }),
  }),
  teamJoined: Events.synced({
    name: 'TeamJoined',
    schema: Schema.Struct({
      teamId: Schema.String,
      memberId: Schema.String,
      role: Schema.optional(Schema.String),
      at: Schema.Date,
    }),
  }),
  auditPruned: Events.synced({ name: 'AuditPruned', schema: Schema.Struct({ before: Schema.Date }) }),
}

const { members, memberships, audit } = tables

const materializers = State.SQLite.materializers(events, {
  MemberUpserted: ({ id, name, email, isAdmin, at }) => [
    members.insert({ id, name, email, isAdmin, joinedAt: at }).onConflict('id', 'update', {
      name,
      updatedAt: at,
      ...(email === undefined ? {} : { email }),
      ...(isAdmin === undefined ? {} : { isAdmin }),
    }),
    audit.insert({ memberId: id, action: isAdmin === undefined ? 'upsert' : isAdmin ? 'upsert, admin' : 'upsert, not admin', at }),
  ],

  TeamJoined: ({ teamId, memberId, role, at }) =>
    memberships.insert({ teamId, memberId, role, since: at }).onConflict(['teamId', 'memberId'], 'update', { role }),

  AuditPruned: ({ before }) => audit.delete().where({ at: { op: '<', value: before } }),
})

export const schema = makeSchema({ events, state: State.SQLite.makeState({ tables, materializers }) })
