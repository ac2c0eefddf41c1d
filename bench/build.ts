/**
 * Build benchmark: what proctor adds on top of building an image by hand, and how fast an
 * already archived image is reused.
 *
 *   node --import tsx bench/build.ts          # needs scripts/services.sh start
 *   BENCH_REPS=2 BENCH_ONLY=cache node --import tsx bench/build.ts   # fewer reps, one part
 *
 * 1. Fetch + build + push of a repository whose Dockerfile does ~20 s of CPU work (no
 *    internet), served by the loopback git daemon: proctor's `fetchCommit`, repo2docker
 *    (with the layer cache off, as `proctor verify` builds) and `pushImage`, next to
 *    `git clone`, `docker build --no-cache` and `docker push` by hand, alternating. Each
 *    build gets its own commit and image name. Goal: proctor / by hand < 1.10.
 * 2. Cache hit: a real proctor (API + worker on SQLite) scores tag A, then tag B is pushed
 *    on the same commit; the time from B's hook POST to B's `evaluating` timeline entry.
 *    Goal: < 1 s.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import Docker from 'dockerode'
import { pino } from 'pino'

import { createNoCacheBuilders } from '../src/archive/no-cache-builders.ts'
import type { Builder } from '../src/build/builder.ts'
import { fetchCommit } from '../src/build/fetch.ts'
import { deleteManifest, pushImage } from '../src/build/registry.ts'
import { TEST_ENV } from '../test/support/env.ts'
import { createProject } from '../test/support/git-server.ts'
import { gitlabTagPush, startProctor } from '../test/support/proctor-harness.ts'

const run = promisify(execFile)
const REPS = Number(process.env.BENCH_REPS ?? 3)
/** Iterations of a Python loop: about 20 s on this machine's cores. */
const WORK = Number(process.env.BENCH_WORK ?? 200_000_000)
/** `build` or `cache` runs one part only. */
const ONLY = process.env.BENCH_ONLY
const REGISTRY = TEST_ENV.registryAddress
const GIT_URL = `git://127.0.0.1:${TEST_ENV.gitPort}`
const REPO2DOCKER = path.join(TEST_ENV.repoRoot, '.venv/bin/repo2docker')

const docker = new Docker({ version: 'v1.41' })
const log = pino({ level: process.env.BENCH_LOG ?? 'silent' })
const id = randomBytes(4).toString('hex')
const images = new Set<string>()
const manifests: { repository: string; digest: string }[] = []

interface Timing {
  fetchMs: number
  buildMs: number
  pushMs: number
  totalMs: number
}

async function main(): Promise<void> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'proctor-bench-build-'))
  const bareName = `bench-build-${id}.git`
  const bareDir = path.join(TEST_ENV.gitRoot, bareName)
  try {
    if (ONLY !== 'cache') await benchBuild(scratch, bareDir, bareName)
    if (ONLY !== 'build') await benchCacheHit()
  } finally {
    await cleanUp(scratch, bareDir)
  }
}

// ─── 1. fetch + build + push ─────────────────────────────────────────────────────────────

async function benchBuild(scratch: string, bareDir: string, bareName: string): Promise<void> {
  const work = path.join(scratch, 'work')
  await mkdir(work)
  await git(TEST_ENV.gitRoot, 'init', '--quiet', '--bare', '--initial-branch=main', bareDir)
  await git(work, 'init', '--quiet', '--initial-branch=main')
  await writeFile(
    path.join(work, 'work.py'),
    `s = 0\nfor i in range(${WORK}):\n    s += i * i\nprint('work done', s)\n`,
  )
  const noCache = await createNoCacheBuilders(docker, REPO2DOCKER, log)
  const proctorRuns: Timing[] = []
  const handRuns: Timing[] = []
  try {
    for (let rep = 1; rep <= REPS; rep++) {
      for (const who of rep % 2 === 1 ? ['proctor', 'hand'] : ['hand', 'proctor']) {
        // A new commit for every build, so neither path can find anything of another.
        const nonce = `${id}-${rep}-${who}`
        await writeFile(
          path.join(work, 'Dockerfile'),
          `FROM ${TEST_ENV.pythonImage}\nCOPY work.py /tmp/work.py\nRUN echo ${nonce} && python3 /tmp/work.py\n`,
        )
        await git(work, 'add', '-A')
        await git(work, 'commit', '--quiet', '-m', nonce)
        await git(work, 'push', '--quiet', `${GIT_URL}/${bareName}`, 'HEAD:refs/heads/main')
        const sha = await git(work, 'rev-parse', 'HEAD')
        const dir = path.join(scratch, nonce)
        const timing =
          who === 'proctor'
            ? await buildWithProctor(noCache.builders.repo2docker, bareName, sha, dir, nonce)
            : await buildByHand(bareName, dir, nonce)
        ;(who === 'proctor' ? proctorRuns : handRuns).push(timing)
        console.log(`  rep ${rep} ${who.padEnd(7)} ${formatTiming(timing)}`)
        await rm(dir, { recursive: true, force: true })
      }
    }
  } finally {
    await noCache.dispose()
  }

  const proctor = median(proctorRuns.map((t) => t.totalMs))
  const hand = median(handRuns.map((t) => t.totalMs))
  console.log(`fetch+build+push, median of ${REPS}:`)
  console.log(`  proctor  ${seconds(proctor)}  (${medianParts(proctorRuns)})`)
  console.log(`  by hand  ${seconds(hand)}  (${medianParts(handRuns)})`)
  // Each repetition's pair ran back to back, so its ratio is less exposed to the load of
  // whatever else the machine runs than the ratio of medians.
  const paired = proctorRuns.map((t, i) => t.totalMs / (handRuns[i]?.totalMs ?? NaN))
  console.log(`  overhead ratio ${(proctor / hand).toFixed(3)} (goal < 1.10)`)
  console.log(
    `  paired ratios ${paired.map((r) => r.toFixed(3)).join(', ')}; median ${median(paired).toFixed(3)}`,
  )
}

async function buildWithProctor(
  builder: Builder,
  bareName: string,
  sha: string,
  dir: string,
  nonce: string,
): Promise<Timing> {
  const imageName = `proctor-bench/build-proctor:${nonce}`
  images.add(imageName)
  const t0 = performance.now()
  await fetchCommit({
    cloneUrl: `${GIT_URL}/${bareName}`,
    commitSha: sha,
    dir,
    timeoutMs: 60_000,
    maxBytes: 1024 ** 3,
  })
  const t1 = performance.now()
  const built = await builder.build({
    contextDir: dir,
    imageName,
    labels: { 'proctor.bench': 'build' },
    timeoutMs: 600_000,
    maxImageBytes: 4 * 1024 ** 3,
    onLog: () => undefined,
  })
  const t2 = performance.now()
  const pushed = await pushImage(docker, {
    imageId: built.imageId,
    registry: REGISTRY,
    repository: 'proctor-bench/build-proctor',
    tag: nonce,
  })
  const t3 = performance.now()
  manifests.push({ repository: 'proctor-bench/build-proctor', digest: pushed.digest })
  images.add(`${REGISTRY}/proctor-bench/build-proctor:${nonce}`)
  return { fetchMs: t1 - t0, buildMs: t2 - t1, pushMs: t3 - t2, totalMs: t3 - t0 }
}

async function buildByHand(bareName: string, dir: string, nonce: string): Promise<Timing> {
  const local = `proctor-bench/build-hand:${nonce}`
  const remote = `${REGISTRY}/proctor-bench/build-hand:${nonce}`
  images.add(local)
  images.add(remote)
  const t0 = performance.now()
  await run('git', ['clone', '--quiet', `${GIT_URL}/${bareName}`, dir])
  const t1 = performance.now()
  await run('docker', ['build', '--quiet', '--no-cache', '-t', local, dir])
  const t2 = performance.now()
  await run('docker', ['tag', local, remote])
  await run('docker', ['push', '--quiet', remote])
  const t3 = performance.now()
  const { stdout } = await run('docker', [
    'image',
    'inspect',
    '-f',
    '{{json .RepoDigests}}',
    remote,
  ])
  const digest = /sha256:[0-9a-f]{64}/.exec(stdout)?.[0]
  if (digest) manifests.push({ repository: 'proctor-bench/build-hand', digest })
  return { fetchMs: t1 - t0, buildMs: t2 - t1, pushMs: t3 - t2, totalMs: t3 - t0 }
}

// ─── 2. cache hit ────────────────────────────────────────────────────────────────────────

async function benchCacheHit(): Promise<void> {
  const proctor = await startProctor()
  const projectPath = `bench-cache-${id}/iris`
  const project = await createProject(projectPath, 'examples/participants/iris')
  try {
    const submit = async (tag: string) => {
      const push = await project.pushTag(tag)
      const body = gitlabTagPush({
        projectId: 9100,
        projectPath,
        tag,
        after: push.after,
        checkoutSha: push.commitSha,
      })
      const posted = Date.now()
      const t0 = performance.now()
      const hook = await proctor.postGitlabHook(body)
      if (hook.status !== 202) throw new Error(`hook answered ${hook.status}`)
      return { eventId: hook.body.eventId as number, posted, t0 }
    }

    const first = await submit('bench-a')
    const a = await proctor.waitForSubmission(await proctor.waitForEventSubmission(first.eventId))
    if (a.state !== 'scored') throw new Error(`tag A ended ${a.state}: ${a.statusDetail}`)
    if (a.image.digest) {
      const [, repository] = /^[^/]+\/(.+)@/.exec(a.image.reference ?? '') ?? []
      if (repository) manifests.push({ repository, digest: a.image.digest })
    }

    const polled: number[] = []
    const recorded: number[] = []
    for (let rep = 1; rep <= REPS; rep++) {
      const b = await submit(`bench-b${rep}`)
      const submissionId = await proctor.waitForEventSubmission(b.eventId)
      // Polls tightly: the figure is bounded by the poll interval plus one API round trip.
      let seenMs: number | undefined
      while (seenMs === undefined) {
        const { body } = await proctor.api<{
          timeline: { state: string | null; at: string | number }[]
        }>(`/api/submissions/${submissionId}`)
        const entry = body.timeline.find((e) => e.state === 'evaluating')
        if (entry) {
          seenMs = performance.now() - b.t0
          recorded.push(new Date(entry.at).getTime() - b.posted)
        } else await new Promise((resolve) => setTimeout(resolve, 5))
      }
      polled.push(seenMs)
      const done = await proctor.waitForSubmission(submissionId)
      console.log(
        `  rep ${rep} hook → evaluating: seen ${seenMs.toFixed(0)} ms, recorded ${recorded.at(-1)} ms; reusedFrom ${done.image.reusedFrom}, ended ${done.state}${done.state === 'scored' ? '' : ` (${done.statusDetail})`}`,
      )
    }
    console.log(`cache hit (same commit), median of ${REPS}:`)
    console.log(`  hook POST → evaluating seen by polling   ${median(polled).toFixed(0)} ms`)
    console.log(`  hook POST → evaluating entry's timestamp ${median(recorded).toFixed(0)} ms`)
    console.log(`  goal < 1000 ms: ${median(polled) < 1000 ? 'met' : 'NOT met'}`)
  } finally {
    await project.remove()
    await rm(path.join(TEST_ENV.gitRoot, `bench-cache-${id}`), { recursive: true, force: true })
    await proctor.close()
  }
}

// ─── helpers ─────────────────────────────────────────────────────────────────────────────

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'bench',
      GIT_AUTHOR_EMAIL: 'bench@example.test',
      GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@example.test',
    },
  })
  return stdout.trim()
}

async function cleanUp(scratch: string, bareDir: string): Promise<void> {
  for (const m of manifests) {
    await deleteManifest(REGISTRY, m.repository, m.digest).catch(() => false)
  }
  // The cache-hit run's images: proctor names them after the project path.
  const all = await docker.listImages()
  for (const info of all) {
    if ((info.RepoTags ?? []).some((tag) => tag.includes(`bench-cache-${id}`))) images.add(info.Id)
  }
  for (const image of images) {
    await docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => undefined)
  }
  await rm(scratch, { recursive: true, force: true })
  await rm(bareDir, { recursive: true, force: true })
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`
}

function formatTiming(t: Timing): string {
  return `fetch ${seconds(t.fetchMs)}  build ${seconds(t.buildMs)}  push ${seconds(t.pushMs)}  total ${seconds(t.totalMs)}`
}

function medianParts(runs: Timing[]): string {
  return formatTiming({
    fetchMs: median(runs.map((t) => t.fetchMs)),
    buildMs: median(runs.map((t) => t.buildMs)),
    pushMs: median(runs.map((t) => t.pushMs)),
    totalMs: median(runs.map((t) => t.totalMs)),
  })
}

await main()
