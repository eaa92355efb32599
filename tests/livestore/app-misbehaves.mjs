// The workspace app whose v1.TodoCompleted misbehaves at e17 (todo_twq657isfh) in the way
// REHEARSE_TEST_MISBEHAVE says: `exit` (the helper dies), `hang` (it never answers), `garbage`
// (a child process sharing its stdout writes a broken protocol line there), or `log` (it logs
// to stdout in every way JavaScript can, which must not matter).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'

import { makeWorkspaceSchema } from './schema.mjs'

export const schema = makeWorkspaceSchema().schema
const original = schema.state.materializers.get('v1.TodoCompleted')
const how = process.env.REHEARSE_TEST_MISBEHAVE
schema.state.materializers.set('v1.TodoCompleted', (args, ctx) => {
  if (args.id === 'todo_twq657isfh') {
    if (how === 'exit') process.exit(7)
    if (how === 'hang') for (;;) {}
    if (how === 'garbage') {
      execFileSync('printf', ['\\036RH1 {"type": "result", "i": \\n'], { stdio: ['ignore', 'inherit', 'inherit'] })
    }
  }
  if (how === 'log') {
    console.log('completing', args.id)
    process.stdout.write('raw stdout write\n')
    fs.writeSync(1, 'a line straight to fd 1\n')
  }
  return original(args, ctx)
})
