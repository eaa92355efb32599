// The workspace app's schema module in TypeScript, as an app team keeps it: what
// `--materializers livestore:…/app.ts` loads, through the app's own tsx or Node's type stripping.
import type { LiveStoreSchema } from '@livestore/livestore'

import { makeWorkspaceSchema } from './schema.mjs'

type Variant = 'a' | 'b'
const variant: Variant = 'a'

export const schema: LiveStoreSchema = makeWorkspaceSchema({ variant }).schema
