// The workspace app after its v1.UserRegistered dropped the "guest" role: the users registered
// as guests in old logs no longer decode (the change corpora/workspace-n200-changed-schema
// makes to the exported event schema, here in the app itself).
import { Events, Schema } from '@livestore/livestore'

import { makeWorkspaceSchema } from './schema.mjs'

export const schema = makeWorkspaceSchema().schema
schema.eventsDefsMap.set(
  'v1.UserRegistered',
  Events.synced({
    name: 'v1.UserRegistered',
    schema: Schema.Struct({
      id: Schema.String,
      name: Schema.String,
      email: Schema.String,
      role: Schema.Literal('owner', 'admin', 'member'),
      avatarUrl: Schema.optional(Schema.String),
      createdAt: Schema.Date,
    }),
  }),
)
