// The workspace app after a change of one field's type: v1.CommentEdited's `body` became a
// number, so the comments edited in old logs no longer decode.
import { Events, Schema } from '@livestore/livestore'

import { makeWorkspaceSchema } from './schema.mjs'

export const schema = makeWorkspaceSchema().schema
schema.eventsDefsMap.set(
  'v1.CommentEdited',
  Events.synced({
    name: 'v1.CommentEdited',
    schema: Schema.Struct({ id: Schema.String, body: Schema.Number, editedAt: Schema.Date }),
  }),
)
