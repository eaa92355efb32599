// rehearse/capture under Node.js (package.json's "node" export condition): everything the
// browser module has, and writePackage, which needs the file system. Kept apart so that a
// browser bundle never sees an import of node:fs.
import fs from 'node:fs/promises'
import path from 'node:path'

export * from './capture.mjs'

/**
 * Node.js: writes a captured package to `dir`, which must not exist or be empty. The files are
 * written and flushed in a hidden directory beside it, which is then renamed into place: `dir`
 * holds a whole package or nothing.
 */
export async function writePackage(pkg, dir) {
  const target = path.resolve(dir)
  const existing = await fs.readdir(target).catch((e) => (e.code === 'ENOENT' ? null : Promise.reject(e)))
  if (existing && existing.length > 0) {
    throw new Error(`${dir}: already exists and is not empty; a package is written only to a new or empty directory`)
  }
  const parent = path.dirname(target)
  await fs.mkdir(parent, { recursive: true })
  const staging = await fs.mkdtemp(path.join(parent, `.${path.basename(target)}.rehearse-capture-`))
  try {
    for (const [name, data] of pkg.files) {
      const handle = await fs.open(path.join(staging, name), 'wx')
      try {
        await handle.writeFile(data)
        await handle.sync()
      } finally {
        await handle.close()
      }
    }
    // Windows renames no directory over another, even an empty one.
    if (existing) await fs.rmdir(target)
    await fs.rename(staging, target)
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true })
    throw e
  }
  return target
}
