// The workspace app whose v1.TodoCompleted materializer keeps a count in a module variable
// and writes it as the todo's priority: each replay in the same process writes other values,
// which a replay in a fresh process does not show.
import { makeWorkspaceSchema } from './schema.mjs'

const { schema, tables } = makeWorkspaceSchema()
export { schema }
let completions = 0
const original = schema.state.materializers.get('v1.TodoCompleted')
schema.state.materializers.set('v1.TodoCompleted', (args, ctx) => {
  completions += 1
  return [original(args, ctx), tables.todos.update({ priority: completions }).where({ id: args.id })].flat()
})
