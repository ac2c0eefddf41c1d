import { readdir, readFile } from 'node:fs/promises'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import { errorMessage } from '../domain/errors.ts'

/**
 * What a worker killed with SIGKILL leaves on its host, and how the survivors clean it up:
 *
 * - phase containers (labelled `proctor.job`, `proctor.attempt` and `proctor.submission` by
 *   evaluate.ts): the dead process can no longer stop or remove them. Once the reaper has
 *   taken the job back, the attempt on the container is not the job's running attempt: such
 *   a container is removed. A container of a job running at the same attempt belongs to a
 *   live worker and is kept. Containers naming a job this database does not have (another
 *   proctor sharing the engine) are left alone; two deployments whose job and submission
 *   ids coincide on one engine are not told apart (give each its own engine).
 * - builder processes (repo2docker runs in its own process group, so it outlives its
 *   parent): an orphan whose parent is no longer a node process is killed with its group;
 *   the engine then cancels its build and removes the intermediate container of the step
 *   that was running.
 *
 * Call `sweepOrphans` when a worker starts and after each reaper pass that took jobs back.
 */
/** Running containers younger than this are left for the next pass. */
const MIN_AGE_SECONDS = 30

export interface SweepResult {
  readonly containersRemoved: readonly string[]
  readonly buildersKilled: readonly number[]
}

export async function sweepOrphans(
  ctx: Pick<AppContext, 'store' | 'config'>,
  docker: Docker,
  log: Logger,
): Promise<SweepResult> {
  const containersRemoved = await removeOrphanContainers(ctx, docker, log)
  const buildersKilled = await killOrphanBuilders(log, ctx.config.builder.workDir)
  return { containersRemoved, buildersKilled }
}

/** Removes containers labelled with a job whose lease for that attempt is no longer held. */
export async function removeOrphanContainers(
  ctx: Pick<AppContext, 'store'>,
  docker: Docker,
  log: Logger,
): Promise<string[]> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: ['proctor=1', 'proctor.job'] },
  })
  if (containers.length === 0) return []

  const jobIds = [...new Set(containers.map((c) => Number(c.Labels['proctor.job'])))].filter(
    Number.isInteger,
  )
  const jobs = await ctx.store.db
    .selectFrom('jobs')
    .select(['id', 'state', 'attempt', 'submission_id'])
    .where('id', 'in', jobIds.length > 0 ? jobIds : [-1])
    .execute()
  const byId = new Map(jobs.map((j) => [j.id, j]))

  const removed: string[] = []
  const now = Date.now() / 1000
  for (const container of containers) {
    const jobId = Number(container.Labels['proctor.job'])
    const attempt = Number(container.Labels['proctor.attempt'])
    const job = byId.get(jobId)
    // Not this database's job (another proctor on the same engine): not ours to judge.
    if (!job || String(job.submission_id) !== container.Labels['proctor.submission']) continue
    if (job.state === 'running' && job.attempt === attempt) continue
    // A running container of a lost attempt goes too (its killer died with its worker), but
    // only once it is older than a claim-to-create race could make it.
    if (container.State === 'running' && now - container.Created < MIN_AGE_SECONDS) continue
    try {
      await docker.getContainer(container.Id).remove({ force: true, v: true })
      removed.push(container.Id.slice(0, 12))
    } catch (err) {
      // 404: gone already; 409: its removal is in progress.
      const status = (err as { statusCode?: number }).statusCode
      if (status !== 404 && status !== 409) {
        log.warn(
          { containerId: container.Id.slice(0, 12), jobId, err: errorMessage(err) },
          'could not remove a container left by a lost attempt; remove it with `docker rm -f`',
        )
      }
    }
  }
  if (removed.length > 0) {
    log.info({ containerIds: removed }, 'removed containers left by attempts that lost their lease')
  }
  return removed
}

/**
 * Kills builder process groups whose proctor parent died (Linux /proc only). Only builders
 * working in `workDir` (their build context is there): a repo2docker an operator runs by
 * hand elsewhere is none of proctor's business.
 */
export async function killOrphanBuilders(
  log: Logger,
  workDir: string,
  names = ['repo2docker'],
): Promise<number[]> {
  const killed: number[] = []
  for (const proc of await listProcesses()) {
    if (!names.some((name) => proc.cmdline.includes(name))) continue
    if (!proc.cmdline.includes(workDir)) continue
    if (proc.pgid !== proc.pid) continue // only group leaders: the group goes with them
    const parent = proc.ppid === 0 ? undefined : await readCmdline(proc.ppid)
    if (parent !== undefined && /\bnode\b|tsx/.test(parent) && proc.ppid !== 1) continue
    try {
      process.kill(-proc.pid, 'SIGKILL')
      killed.push(proc.pid)
    } catch {
      // It ended meanwhile.
    }
  }
  if (killed.length > 0) log.warn({ pids: killed }, 'killed builders left by a worker that died')
  return killed
}

interface ProcessInfo {
  pid: number
  ppid: number
  pgid: number
  cmdline: string
}

async function listProcesses(): Promise<ProcessInfo[]> {
  let entries: string[]
  try {
    entries = await readdir('/proc')
  } catch {
    return []
  }
  const found: ProcessInfo[] = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      // The command name is in parentheses and may hold spaces: read after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const cmdline = (await readCmdline(pid)) ?? ''
      found.push({ pid, ppid: Number(fields[1]), pgid: Number(fields[2]), cmdline })
    } catch {
      // The process ended while we looked.
    }
  }
  return found
}

async function readCmdline(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim()
  } catch {
    return undefined
  }
}
