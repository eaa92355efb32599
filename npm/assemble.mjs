#!/usr/bin/env node
// Assembles the npm packages from rehearse binaries: `rehearse` (the launcher and the capture
// module, with every platform package as an optional dependency) and one package per platform
// given, holding that platform's binary. No install script, no download: the package manager
// picks the platform package by its os/cpu/libc fields.
//
//   node npm/assemble.mjs --version 0.2.0 --out dist/npm \
//     --binary linux-x64-gnu=target/release/rehearse [--binary win32-x64=rehearse.exe …]
//
// The keys are those of npm/platforms.json. Then `npm pack` or `npm publish` each directory
// under --out, the platform packages first.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = path.dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({
  options: {
    version: { type: 'string' },
    out: { type: 'string' },
    binary: { type: 'string', multiple: true, default: [] },
  },
})
const die = (message) => {
  console.error(`assemble: ${message}`)
  process.exit(2)
}
if (!values.version || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(values.version)) die('--version X.Y.Z is required')
if (!values.out) die('--out DIR is required')
const version = values.version
const out = path.resolve(values.out)
const platforms = JSON.parse(fs.readFileSync(path.join(here, 'platforms.json'), 'utf8'))
const launcher = JSON.parse(fs.readFileSync(path.join(here, 'rehearse/package.json'), 'utf8'))
const common = { license: launcher.license, repository: launcher.repository, homepage: launcher.homepage }

fs.mkdirSync(out, { recursive: true })
const written = []
for (const spec of values.binary) {
  const [key, file] = spec.split(/=(.*)/s)
  const platform = platforms[key]
  if (!platform) die(`--binary ${spec}: unknown platform ${key} (known: ${Object.keys(platforms).join(', ')})`)
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) die(`--binary ${spec}: ${file} is not a file`)
  const dir = path.join(out, key)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true })
  const exe = platform.os === 'win32' ? 'rehearse.exe' : 'rehearse'
  fs.copyFileSync(file, path.join(dir, 'bin', exe))
  fs.chmodSync(path.join(dir, 'bin', exe), 0o755)
  const manifest = {
    name: platform.package,
    version,
    description: `The rehearse binary for ${key} (${platform.target}); installed by the rehearse package`,
    ...common,
    os: [platform.os],
    cpu: [platform.cpu],
    ...(platform.libc ? { libc: [platform.libc] } : {}),
    files: [`bin/${exe}`],
    preferUnplugged: true,
  }
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  fs.writeFileSync(
    path.join(dir, 'README.md'),
    `# ${platform.package}\n\nThe \`rehearse\` binary for ${key}. Install \`rehearse\` instead: it depends on this package where it fits.\n`,
  )
  written.push(dir)
}

const dir = path.join(out, 'rehearse')
fs.rmSync(dir, { recursive: true, force: true })
fs.mkdirSync(path.join(dir, 'bin'), { recursive: true })
for (const f of ['bin/rehearse.cjs', 'capture-node.mjs', 'capture.d.ts', 'sqlite-read.mjs', 'README.md']) {
  fs.copyFileSync(path.join(here, 'rehearse', f), path.join(dir, f))
}
fs.chmodSync(path.join(dir, 'bin/rehearse.cjs'), 0o755)
fs.copyFileSync(path.join(here, 'platforms.json'), path.join(dir, 'platforms.json'))
const capture = fs.readFileSync(path.join(here, 'rehearse/capture.mjs'), 'utf8')
if (!capture.includes("const VERSION = '0.0.0-dev'")) die('capture.mjs lost its VERSION line')
fs.writeFileSync(path.join(dir, 'capture.mjs'), capture.replace("const VERSION = '0.0.0-dev'", `const VERSION = '${version}'`))
launcher.version = version
launcher.optionalDependencies = Object.fromEntries(Object.values(platforms).map((p) => [p.package, version]))
fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(launcher, null, 2)}\n`)
written.push(dir)
for (const w of written) console.log(w)
