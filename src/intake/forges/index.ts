import type { ForgeConfig } from '../../config/proctor-config.ts'
import type { ForgeAdapter } from './adapter.ts'
import { giteaAdapter } from './gitea.ts'
import { githubAdapter } from './github.ts'
import { gitlabAdapter } from './gitlab.ts'

const ADAPTERS: Readonly<Record<ForgeConfig['kind'], ForgeAdapter>> = {
  gitlab: gitlabAdapter,
  github: githubAdapter,
  gitea: giteaAdapter,
}

export function adapterFor(kind: ForgeConfig['kind']): ForgeAdapter {
  return ADAPTERS[kind]
}

export type { Delivery, ForgeAdapter, Verification } from './adapter.ts'
export { BodyError } from './adapter.ts'
