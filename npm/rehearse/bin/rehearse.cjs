#!/usr/bin/env node
// The `rehearse` command of the npm package. The binary itself comes in one package per
// platform (optionalDependencies with os/cpu/libc, so the package manager installs only the one
// that fits, with no install script and no download). This launcher finds it and runs it as if
// it had been run directly: same arguments, standard streams, exit code and signals.
'use strict'

const { spawn } = require('node:child_process')
const os = require('node:os')
const path = require('node:path')

const PLATFORMS = require('../platforms.json')

/** Exit code for "cannot run": 2, rehearse's own for an unusable setup; 125 under
 * `--git-bisect`, so that `git bisect run` skips the commit rather than calling it bad. */
const cannotRun = process.argv.includes('--git-bisect') ? 125 : 2

function fail(message) {
  process.stderr.write(`rehearse: ${message}\n`)
  process.exit(cannotRun)
}

/** `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, `win32-x64`, … */
function platformKey() {
  const key = `${process.platform}-${process.arch}`
  if (process.platform !== 'linux') return key
  // glibc's runtime version is in Node's own report; musl builds of Node have none.
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : {}
  return `${key}-${report.header?.glibcVersionRuntime ? 'gnu' : 'musl'}`
}

function binaryPath() {
  if (process.env.REHEARSE_BINARY) return process.env.REHEARSE_BINARY
  const key = platformKey()
  const platform = PLATFORMS[key]
  if (!platform) {
    const known = Object.keys(PLATFORMS).join(', ')
    fail(
      `no rehearse binary is published for this platform (${key}); there are binaries for ${known}. ` +
        'Build it from source (cargo install rehearse) and set REHEARSE_BINARY to its path.',
    )
  }
  let dir
  try {
    dir = path.dirname(require.resolve(`${platform.package}/package.json`))
  } catch {
    fail(
      `the package with the binary for this platform (${key}), ${platform.package}, is not installed. ` +
        'It is an optional dependency of rehearse: install again without --omit=optional / --no-optional, ' +
        `or add ${platform.package} to your dev dependencies; or set REHEARSE_BINARY to a rehearse binary.`,
    )
  }
  return path.join(dir, 'bin', process.platform === 'win32' ? 'rehearse.exe' : 'rehearse')
}

const binary = binaryPath()
// The LiveStore plugin runs the app's materializers in Node.js: the Node.js running this is the
// app's own.
const env = { ...process.env }
if (!env.REHEARSE_NODE) env.REHEARSE_NODE = process.execPath

const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit', env, windowsHide: true })

// Signals sent to the launcher (a CI runner cancelling the job, `kill`, Ctrl-C) go to rehearse.
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGBREAK']
const forwarders = new Map()
for (const signal of FORWARDED) {
  if (!(signal in os.constants.signals)) continue
  const forward = () => {
    try {
      child.kill(signal)
    } catch {
      // The child has exited already; its exit is handled below.
    }
  }
  try {
    process.on(signal, forward)
    forwarders.set(signal, forward)
  } catch {
    // A signal this platform cannot listen for.
  }
}

child.on('error', (err) => {
  fail(`cannot run ${binary}: ${err.message}`)
})

child.on('exit', (code, signal) => {
  for (const [s, f] of forwarders) process.removeListener(s, f)
  if (signal) {
    // Die of the same signal, so that whoever started us sees what happened to rehearse; where
    // that does not end the process (Windows), exit as a shell reports a signal: 128 + number.
    try {
      process.kill(process.pid, signal)
    } catch {
      // Fall through to the exit code.
    }
    process.exit(128 + (os.constants.signals[signal] ?? 0))
  }
  process.exit(code ?? cannotRun)
})
