import type { StorageReport } from './accounting.ts'
import type { RetentionPlan, RetentionResult } from './retention.ts'
import type { VerificationRecord } from './verify.ts'

/** Human output of the archive's commands (cli-commands.ts). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

export function formatStorage(report: StorageReport): string {
  const line = (label: string, f: { images: number; bytes: number; exclusiveBytes: number }) =>
    `${label.padEnd(32)} ${String(f.images).padStart(6)} ${formatBytes(f.bytes).padStart(11)} ${formatBytes(f.exclusiveBytes).padStart(11)}`
  const lines = [
    `${''.padEnd(32)} ${'images'.padStart(6)} ${'holds'.padStart(11)} ${'only its'.padStart(11)}`,
  ]
  for (const c of report.challenges) {
    lines.push(line(`challenge ${c.challengeId}`, c))
    for (const p of c.participants) lines.push(line(`  ${p.participant}`, p))
  }
  lines.push(line('graders', report.graders))
  lines.push(line('archive (each blob once)', report.total))
  lines.push(
    `${'as if nothing were shared'.padEnd(32)} ${''.padStart(6)} ${formatBytes(report.total.unsharedBytes).padStart(11)}`,
  )
  for (const m of report.missing)
    lines.push(
      `missing from the registry: ${m.reference} (submissions ${m.submissionIds.join(', ')})`,
    )
  return lines.join('\n')
}

export function formatRetention(
  result: { dryRun: boolean; plan: RetentionPlan } & Partial<RetentionResult>,
): string {
  const { plan } = result
  const lines = [
    `challenge ${plan.challengeId}: policy keep best ${plan.policy.keepBestPerParticipant}, last ${plan.policy.keepLastPerParticipant}, ${plan.policy.keepUntilEnd ? 'until the end, ' : ''}grace ${plan.policy.graceDays} d; challenge ${plan.challengeEnded ? 'ended' : 'running'}`,
  ]
  for (const d of plan.decisions) {
    lines.push(
      `  ${String(d.submissionId).padStart(6)} ${d.participant.padEnd(20)} ${d.action === 'expire' ? 'EXPIRE' : `keep (${d.reasons.join(', ')})`}`,
    )
  }
  lines.push(
    `${plan.expire.length} image(s) ${result.dryRun ? 'would expire' : 'to expire'}; garbage collection then frees ${formatBytes(plan.bytesFreed)}`,
  )
  if (!result.dryRun) {
    lines.push(
      `expired ${result.expired?.length ?? 0}, failed ${result.failed?.length ?? 0}${result.failed?.length ? `: ${result.failed.map((f) => `${f.reference}: ${f.error}`).join('; ')}` : ''}`,
    )
    lines.push('run `proctor gc` to reclaim the space')
  } else lines.push('dry run: nothing deleted (add --apply)')
  return lines.join('\n')
}

export function formatVerification(record: VerificationRecord): string {
  const s = record.summary
  const lines = [
    `verification ${record.id} of submission ${record.submissionId}: ${record.outcome ?? 'running'}`,
  ]
  if (!s) return lines.join('\n')
  if (s.error) lines.push(`  ${s.error}`)
  if (s.archive)
    lines.push(
      `  archive  ${s.archive.reference}`,
      `           layers ${s.archive.layers.map((l) => l.diffId.slice(7, 19)).join(' ')}`,
    )
  if (s.rebuild)
    lines.push(
      `  rebuild  ${s.rebuild.imageId.slice(0, 19)} with ${s.builder} ${s.builderVersion}`,
      `           layers ${s.rebuild.layers.map((l) => l.diffId.slice(7, 19)).join(' ')}`,
    )
  const c = s.comparison
  if (c) {
    lines.push(
      `  compared ${c.compared} paths (contents, modes, owners); ${c.mtimeOnly} differ only in time; ${c.notCompared.vcsMetadata} .git paths not compared`,
    )
    for (const d of c.differences) {
      lines.push(
        `  ${d.kind.padEnd(8)} ${d.path}  ${d.fields.join(',')}  archive layer ${d.archive?.layer ?? '-'}, rebuild layer ${d.rebuild?.layer ?? '-'}`,
      )
    }
    if (c.differenceCount > c.differences.length)
      lines.push(`  … and ${c.differenceCount - c.differences.length} more`)
  }
  return lines.join('\n')
}
