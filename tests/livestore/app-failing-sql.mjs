// The workspace app whose v1.UserDeactivated materializer returns raw SQL that SQLite rejects
// (it clears users.email, which is NOT NULL): as the SQL definitions of
// corpora/workspace-n200-materializer-error do, so that both paths must blame the same rows.
import { makeWorkspaceSchema } from './schema.mjs'

export const schema = makeWorkspaceSchema().schema
schema.state.materializers.set('v1.UserDeactivated', ({ id }) => ({
  sql: 'UPDATE users SET isActive = 0, email = NULL WHERE id = $id',
  bindValues: { id },
}))
