// The workspace app exporting the function that makes its schema (a factory) where the
// schema itself is expected: the plugin says so instead of only "no schema".
import { makeWorkspaceSchema } from './schema.mjs'

export const schema = () => makeWorkspaceSchema().schema
