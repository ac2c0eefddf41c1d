import path from 'node:path'

/**
 * Where the local services of scripts/services.sh are, read from the same environment
 * variables as scripts/env.sh, with the same defaults (derived from this checkout).
 */
export const REPO_ROOT = path.resolve(import.meta.dirname, '../..')

const env = process.env
const PROCTOR_HOME = env.PROCTOR_HOME ?? path.join(REPO_ROOT, '.proctor')

export const TEST_ENV = {
  repoRoot: REPO_ROOT,
  proctorHome: PROCTOR_HOME,
  /** Folder the git daemon serves: `<gitRoot>/alice/iris.git` is `git://…/alice/iris.git`. */
  gitRoot: env.PROCTOR_GIT_ROOT ?? path.join(PROCTOR_HOME, 'git'),
  gitPort: Number(env.PROCTOR_GIT_PORT ?? 9418),
  registryAddress: env.PROCTOR_REGISTRY_ADDR ?? '127.0.0.1:5000',
  busyboxImage: env.PROCTOR_BUSYBOX_IMAGE ?? 'proctor/busybox:1',
  pythonImage: env.PROCTOR_PYTHON_IMAGE ?? 'proctor/python:3.11',
} as const
