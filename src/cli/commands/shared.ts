import { Option, type Command } from 'commander'

import { loadConfigFile, type ProctorConfig } from '../../config/proctor-config.ts'
import { ApiClient } from '../api-client.ts'

/** Flags every command that talks to the API takes. */
export interface ApiFlags {
  readonly apiUrl?: string
  readonly token?: string
  readonly json?: boolean
}

export function withApiOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--api-url <url>', 'proctor API address').env('PROCTOR_API_URL'))
    .addOption(new Option('--token <token>', 'API token').env('PROCTOR_API_TOKEN'))
    .option('--json', 'print JSON for scripts')
}

export function clientFor(flags: ApiFlags): ApiClient {
  return ApiClient.fromEnv(flags)
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2))
}

/** The configuration named by the root command's `--config`. */
export function configOf(cmd: Command): ProctorConfig {
  return loadConfigFile(rootOf(cmd).opts<{ config: string }>().config)
}

export function rootOf(cmd: Command): Command {
  let root = cmd
  while (root.parent) root = root.parent
  return root
}

/** Pads and joins columns: a plain aligned table for a terminal. */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = []
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
    .join('\n')
}
