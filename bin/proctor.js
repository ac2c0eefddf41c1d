#!/usr/bin/env node
// proctor runs its TypeScript sources through tsx, so an operator needs no build step.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
