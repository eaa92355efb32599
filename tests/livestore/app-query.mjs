// The workspace app with v1.TodoCompleted rewritten to read the project's counter with
// ctx.query and write the new value, instead of incrementing it in SQL: the same state, if and
// only if ctx.query sees the state as it stands before the event.
import { makeWorkspaceSchema } from './schema.mjs'

export const schema = makeWorkspaceSchema().schema
const original = schema.state.materializers.get('v1.TodoCompleted')
schema.state.materializers.set('v1.TodoCompleted', (args, ctx) => {
  const [todoUpdate] = original(args, ctx)
  const rows = ctx.query({
    query: 'SELECT completedCount FROM project_stats WHERE projectId = ?',
    bindValues: [args.projectId],
  })
  if (rows.length === 0) return [todoUpdate]
  return [
    todoUpdate,
    {
      sql: 'UPDATE project_stats SET completedCount = $n, lastActivityAt = $at WHERE projectId = $projectId',
      bindValues: { n: rows[0].completedCount + 1, at: args.completedAt.toISOString(), projectId: args.projectId },
      writeTables: new Set(['project_stats']),
    },
  ]
})
