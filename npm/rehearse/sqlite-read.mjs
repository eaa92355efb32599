// Reads the rows of a rowid table out of a SQLite database image (the bytes LiveStore's
// `export` and `getEventlogData` return), with no SQLite library: the capture module runs in a
// browser page or in Node.js, inside apps whose package manager may not let it reach
// LiveStore's own wasm SQLite. Only what the manifest needs is read: the format's table
// b-trees, records and overflow chains (https://www.sqlite.org/fileformat2.html).

const HEADER = 'SQLite format 3\u0000'

/** A database image, checked enough to be walked. */
export function openImage(bytes, what) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)
  const fail = (why) => {
    throw new Error(`${what} is not a SQLite database this reader understands: ${why}`)
  }
  if (u8.length < 100 || String.fromCharCode(...u8.subarray(0, 16)) !== HEADER) fail('no SQLite header')
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength)
  const raw = view.getUint16(16)
  const pageSize = raw === 1 ? 65536 : raw
  const usable = pageSize - u8[20]
  if (view.getUint32(56) > 1) fail('its text encoding is UTF-16 (LiveStore writes UTF-8)')
  return { u8, view, pageSize, usable, what, fail }
}

function varint(u8, at) {
  let value = 0
  for (let i = 0; i < 8; i++) {
    const b = u8[at + i]
    value = value * 128 + (b & 0x7f)
    if (b < 0x80) return [value, i + 1]
  }
  return [value * 256 + u8[at + 8], 9]
}

function page(db, n) {
  if (n < 1 || n * db.pageSize > db.u8.length) db.fail(`page ${n} is outside the file`)
  return (n - 1) * db.pageSize
}

/** The payload of a table leaf cell, following its overflow chain. */
function payload(db, at) {
  const [size, a] = varint(db.u8, at)
  const [rowid, b] = varint(db.u8, at + a)
  const start = at + a + b
  const u = db.usable
  const maxLocal = u - 35
  let local = size
  if (size > maxLocal) {
    const minLocal = Math.floor(((u - 12) * 32) / 255) - 23
    const k = minLocal + ((size - minLocal) % (u - 4))
    local = k <= maxLocal ? k : minLocal
  }
  if (local === size) return { rowid, bytes: db.u8.subarray(start, start + size) }
  const out = new Uint8Array(size)
  out.set(db.u8.subarray(start, start + local))
  let filled = local
  let next = db.view.getUint32(start + local)
  while (filled < size) {
    if (next === 0) db.fail('an overflow chain ends early')
    const p = page(db, next)
    const n = Math.min(u - 4, size - filled)
    out.set(db.u8.subarray(p + 4, p + 4 + n), filled)
    filled += n
    next = db.view.getUint32(p)
  }
  return { rowid, bytes: out }
}

const utf8 = new TextDecoder()

/** The values of a record, by column. */
function record(db, bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const [headerSize, h] = varint(bytes, 0)
  const types = []
  for (let at = h; at < headerSize; ) {
    const [t, n] = varint(bytes, at)
    types.push(t)
    at += n
  }
  const values = []
  let at = headerSize
  for (const t of types) {
    if (t === 0) values.push(null)
    else if (t >= 1 && t <= 6) {
      const len = [0, 1, 2, 3, 4, 6, 8][t]
      let v = 0n
      for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(bytes[at + i])
      v = BigInt.asIntN(len * 8, v)
      values.push(Number(v))
      at += len
    } else if (t === 7) {
      values.push(view.getFloat64(at))
      at += 8
    } else if (t === 8 || t === 9) values.push(t - 8)
    else if (t >= 12) {
      const len = (t - 12) >> 1
      const slice = bytes.subarray(at, at + len)
      values.push(t % 2 === 0 ? slice : utf8.decode(slice))
      at += len
    } else db.fail(`a record uses the reserved serial type ${t}`)
  }
  return values
}

/** Calls `row(rowid, values)` for every row of the table b-tree rooted at page `root`. */
function walk(db, root, row, depth = 0) {
  if (depth > 64) db.fail('its b-tree is deeper than any real one')
  const p = page(db, root)
  const h = root === 1 ? p + 100 : p
  const type = db.u8[h]
  const cells = db.view.getUint16(h + 3)
  const pointers = h + (type === 5 ? 12 : 8)
  for (let i = 0; i < cells; i++) {
    const cell = p + db.view.getUint16(pointers + 2 * i)
    if (type === 13) {
      const { rowid, bytes } = payload(db, cell)
      row(rowid, record(db, bytes))
    } else if (type === 5) walk(db, db.view.getUint32(cell), row, depth + 1)
    else db.fail(`page ${root} is not a table b-tree page (type ${type})`)
  }
  if (type === 5) walk(db, db.view.getUint32(h + 8), row, depth + 1)
}

/** The root page of each table, from `sqlite_schema`. */
export function tables(db) {
  const roots = new Map()
  walk(db, 1, (_rowid, [type, name, _tbl, rootpage]) => {
    if (type === 'table') roots.set(name, rootpage)
  })
  return roots
}

/** Every row of `table` as `[rowid, values]`, or `undefined` when there is no such table. */
export function rows(db, table) {
  const root = tables(db).get(table)
  if (root === undefined) return undefined
  const out = []
  walk(db, root, (rowid, values) => out.push([rowid, values]))
  return out
}
