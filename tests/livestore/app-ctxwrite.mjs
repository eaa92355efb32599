// The workspace app with a materializer that writes through ctx.query (LiveStore runs whatever
// SQL ctx.query is given, writes included): v1.TodoUpdated records each updated todo in
// uiState. And e17's v1.TodoCompleted returns a third statement that fails, after its first
// two changed something, so that the replay rolls that event back while the writes of the
// events before it (ctx.query's among them) must stay.
import { makeWorkspaceSchema } from './schema.mjs'

export const schema = makeWorkspaceSchema().schema
const updated = schema.state.materializers.get('v1.TodoUpdated')
schema.state.materializers.set('v1.TodoUpdated', (args, ctx) => {
  ctx.query({
    query: "INSERT OR REPLACE INTO uiState (id, value) VALUES ('probe-' || ?, '1')",
    bindValues: [args.id],
  })
  return updated(args, ctx)
})
const completed = schema.state.materializers.get('v1.TodoCompleted')
schema.state.materializers.set('v1.TodoCompleted', (args, ctx) => {
  const out = completed(args, ctx)
  const list = Array.isArray(out) ? out : [out]
  if (args.id === 'todo_twq657isfh') return [...list, { sql: "SELECT json('{')", bindValues: {} }]
  return list
})
