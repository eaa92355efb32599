// The workspace app's LiveStore schema, exported the way an app module exports it.
import { makeWorkspaceSchema } from './schema.mjs'

export const schema = makeWorkspaceSchema().schema
