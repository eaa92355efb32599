#!/usr/bin/env node
// How fast LiveStore's own code alone turns events into statements, in one process: the
// plugin runs exactly this code for every event (spread over its helpers) and more on top
// (the pipe, rehearse's SQLite). The benchmark (benches/replay.rs) runs it beside the
// plugin's replay.
//
//   node statements-alone.mjs <trace.jsonl>
//
// The events are those rehearse sent its helpers in a replay traced with
// REHEARSE_PLUGIN_TRACE (the same events, with the same encoding). They are turned into
// statements in one Node.js process, in log order, by LiveStore's
// getExecStatementsFromMaterializer with the app's schema (app.mjs): no pipe, no JSON
// answers, no SQLite. The first pass is cold, as a helper's is; the second is warm.
// Prints one JSON line.
import { readFileSync } from 'node:fs'

import * as common from '@livestore/common'

import { schema } from './app.mjs'

const events = []
for (const line of readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (!line.startsWith('{"type":"events"')) continue
  events.push(...JSON.parse(line).events)
}
events.sort((a, b) => a.i - b.i)

// No materializer of this app reads the state; one that did would get no rows here.
const dbState = { select: () => [], execute: () => {}, debug: {} }
const seqNum = ([global, client, rebaseGeneration]) => ({ global, client, rebaseGeneration })

const pass = () => {
  const cpu = process.cpuUsage()
  const t = performance.now()
  let statements = 0
  for (const ev of events) {
    const encoded = {
      name: ev.name,
      args: JSON.parse(ev.args),
      seqNum: seqNum(ev.seq),
      parentSeqNum: seqNum(ev.parent),
      clientId: ev.clientId,
      sessionId: ev.sessionId,
    }
    statements += common.getExecStatementsFromMaterializer({
      eventDef: schema.eventsDefsMap.get(ev.name),
      materializer: schema.state.materializers.get(ev.name),
      dbState,
      event: { decoded: undefined, encoded },
    }).length
  }
  const used = process.cpuUsage(cpu)
  return {
    seconds: (performance.now() - t) / 1000,
    cpuSeconds: (used.user + used.system) / 1e6,
    statements,
  }
}

const cold = pass()
const warm = pass()
// LiveStore logs to stdout too; this is the line that starts with {"events".
console.log(JSON.stringify({ events: events.length, cold, warm }))
