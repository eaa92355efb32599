// The workspace app with a materializer that throws for one event (e17, todo_twq657isfh).
import { makeWorkspaceSchema } from './schema.mjs'

export const schema = makeWorkspaceSchema().schema
const original = schema.state.materializers.get('v1.TodoCompleted')
schema.state.materializers.set('v1.TodoCompleted', (args, ctx) => {
  if (args.id === 'todo_twq657isfh') throw new Error(`cannot complete ${args.id}: the project is archived`)
  return original(args, ctx)
})
