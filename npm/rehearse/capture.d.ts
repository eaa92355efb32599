/** A backup package: its files by name (`eventlog.db`, `state.db`, `manifest.json`). */
export interface CapturedPackage {
  manifest: {
    manifestVersion: 1
    storeId: string
    storageFormatVersion: number
    stateSchemaHash: string | null
    syncHead: number | null
    backendId?: string | null
    lastEvent: { global: number; client: number; rebaseGeneration: number } | null
    events: number
    eventCounts: Record<string, number>
    appVersion: string | null
    createdAt: string
    tool: { name: string; version: string }
    files: Array<{ path: string; role: 'eventlog' | 'state'; bytes: number; sha256: string }>
  }
  files: Map<string, Uint8Array>
  /** How many reads it took to find the log unchanged around the state (1 when the app was idle). */
  attempts: number
}

/** Takes a backup package from a running LiveStore 0.4 store (Node.js or browser). */
export function capture(
  store: unknown,
  options?: { appVersion?: string; createdAt?: Date },
): Promise<CapturedPackage>

/**
 * Node.js only (the "node" export condition): writes the package to `dir` (new or empty), whole
 * or not at all. Returns its path.
 */
export function writePackage(pkg: CapturedPackage, dir: string): Promise<string>

/** The package as a tar archive unpacking into `dir` (default `rehearse-package`). */
export function toTar(pkg: CapturedPackage, dir?: string): Uint8Array

/** Browser: offers the package for download as a tar archive; returns the Blob. */
export function download(pkg: CapturedPackage, fileName?: string): Blob

/** What a package's manifest says of an event log, read from its bytes. */
export function describeLog(bytes: Uint8Array): {
  events: number
  eventCounts: Record<string, number>
  lastEvent: { global: number; client: number; rebaseGeneration: number } | null
  syncHead: number | null
  backendId: string | null
}
