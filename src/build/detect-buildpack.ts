import { existsSync } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'

import { InfrastructureError, SubmissionFailure } from '../domain/errors.ts'
import { findBinderDir } from './builder.ts'
import { baseEnv, runProcess } from './run-process.ts'

export interface BuildpackDetection {
  /** repo2docker's buildpack class (`DockerBuildPack`, `PythonBuildPack`, `CondaBuildPack`…). */
  buildpack: string
  /** The folder repo2docker reads its configuration from, when not the repository root. */
  binderDir: 'binder' | '.binder' | null
  /** Configuration files repo2docker looks at that the repository has. */
  files: string[]
}

export interface DetectBuildpackOptions {
  /** The repo2docker executable (its Python interpreter runs the detection). */
  binary: string
  timeoutMs?: number
  signal?: AbortSignal
}

const CONFIG_FILES = [
  'Dockerfile',
  'Project.toml',
  'JuliaProject.toml',
  'REQUIRE',
  'default.nix',
  'runtime.txt',
  'DESCRIPTION',
  'install.R',
  'environment.yml',
  'Pipfile',
  'Pipfile.lock',
  'requirements.txt',
  'setup.py',
  'pyproject.toml',
  'apt.txt',
  'postBuild',
  'start',
]

/**
 * repo2docker's own buildpack choice, in its precedence order. `repo2docker --no-build`
 * (2024.07.0) prints the generated Dockerfile but never names the buildpack, and renders
 * files it need not read, so this asks repo2docker's classes directly through its Python.
 */
const DETECT_SCRIPT = `
import json, os, sys
from repo2docker.app import Repo2Docker
os.chdir(sys.argv[1])
app = Repo2Docker()
picked = None
for buildpack_class in app.buildpacks:
    buildpack = buildpack_class(base_image=app.base_image)
    if buildpack.detect():
        picked = buildpack
        break
if picked is None:
    picked = app.default_buildpack(base_image=app.base_image)
print(json.dumps({"buildpack": type(picked).__name__}))
`

/**
 * Which buildpack repo2docker (and so Binder) would use for a repository, without building.
 * Reports Binder compatibility for repositories that cannot be built offline
 * (`requirements.txt`, `environment.yml`, `apt.txt`).
 */
export async function detectBuildpack(
  contextDir: string,
  options: DetectBuildpackOptions,
): Promise<BuildpackDetection> {
  const binderDir = await findBinderDir(contextDir)
  const [python, ...pythonArgs] = await interpreterOf(options.binary)
  if (!python)
    throw new InfrastructureError(`cannot find the Python interpreter of ${options.binary}`)

  let result
  try {
    // -I: the script changes into the repository, and without isolation a later import
    // could load a participant's module of the same name from there.
    result = await runProcess(
      python,
      [...pythonArgs, '-I', '-c', DETECT_SCRIPT, path.resolve(contextDir)],
      {
        env: baseEnv({ PYTHONDONTWRITEBYTECODE: '1' }),
        timeoutMs: options.timeoutMs ?? 60_000,
        signal: options.signal,
      },
    )
  } catch (err) {
    if (options.signal?.aborted) throw err
    throw new InfrastructureError(`cannot run ${python}: ${String(err)}`, { cause: err })
  }
  if (result.aborted) throw options.signal?.reason
  const lastLine = result.stdout.trim().split('\n').at(-1) ?? ''
  if (result.code !== 0 || !lastLine.startsWith('{')) {
    const error = result.stderr.trim().split('\n').at(-1) ?? ''
    // repo2docker's detect() raises only for repository mistakes (a legacy Julia REQUIRE…).
    if (/^(RuntimeError|ValueError)/.test(error)) {
      throw new SubmissionFailure(
        'build_failed',
        `repo2docker cannot use this repository: ${error}`,
      )
    }
    throw new InfrastructureError(
      `repo2docker buildpack detection failed (exit ${result.code ?? result.signal}): ${error}`,
    )
  }

  const parsed = JSON.parse(lastLine) as { buildpack: string }
  const configDir = path.join(contextDir, binderDir ?? '')
  const files = CONFIG_FILES.filter((name) => existsSync(path.join(configDir, name)))
  return { buildpack: parsed.buildpack, binderDir, files }
}

/** The command line of the interpreter named by a script's `#!` line. */
async function interpreterOf(binary: string): Promise<string[]> {
  let firstLine = ''
  try {
    const handle = await open(binary, 'r')
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(512), 0, 512, 0)
      firstLine = buffer.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? ''
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw new InfrastructureError(`cannot read ${binary}: ${String(err)}`, { cause: err })
  }
  if (!firstLine.startsWith('#!')) return [path.join(path.dirname(binary), 'python3')]
  return firstLine.slice(2).trim().split(/\s+/)
}
