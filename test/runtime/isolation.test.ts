import { randomUUID } from 'node:crypto'
import { chmod, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { classifyParticipantRun } from '../../src/runtime/classify.ts'
import type { PhaseRunRequest } from '../../src/runtime/container-runtime.ts'
import {
  BUSYBOX,
  PYTHON,
  buildTestImage,
  docker,
  imageId,
  leftovers,
  phaseRequest,
  removeImage,
  runtime,
  testLabels,
  timedRun,
} from './support.ts'

/** Connects with TCP and prints `connected` or `failed <error>`; exit 3 on failure. */
const PROBE = `
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((host, port), timeout=3)
    print("connected", s.getpeername())
except Exception as e:
    print("failed", type(e).__name__, e)
    sys.exit(3)
`

/** The host this machine's apt reaches: the one outside server a bridged container can reach. */
async function mirrorHost(): Promise<string> {
  const sources = await readFile('/etc/apt/sources.list.d/debian.sources', 'utf8')
  const uri = /^URIs:\s*(\S+)/m.exec(sources)?.[1]
  if (!uri) throw new Error('no URIs: line in /etc/apt/sources.list.d/debian.sources')
  return new URL(uri).hostname
}

describe('DockerRuntime isolation', () => {
  const labels = testLabels('isolation')
  const rootImageTag = `proctor-test/runs-as-root:${randomUUID().slice(0, 8)}`
  const seen: Array<string | null> = []
  let busybox: string
  let python: string
  let rootImage: string
  let dataRoot: string

  beforeAll(async () => {
    busybox = await imageId(BUSYBOX)
    python = await imageId(PYTHON)
    // A Dockerfile that asks for root, and puts its user in the root group for good measure.
    rootImage = await buildTestImage(
      rootImageTag,
      [
        `FROM ${BUSYBOX}`,
        'USER root',
        "RUN printf 'root:x:0:participant\\nparticipant:x:1000:\\n' > /etc/group",
        'CMD ["sh", "-c", "echo uid=$(id -u) groups=$(id -G); touch /x 2>&1; grep -E \'^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):\' /proc/self/status; touch /tmp/ok && echo tmp-writable; echo home=$HOME"]',
      ].join('\n'),
    )
    dataRoot = await mkdtemp(path.join(tmpdir(), 'proctor-runtime-data-'))
    await mkdir(path.join(dataRoot, 'inputs'))
    await mkdir(path.join(dataRoot, 'labels'))
    await writeFile(path.join(dataRoot, 'inputs', 'x.csv'), 'id,feature\n1,input-row\n')
    await writeFile(path.join(dataRoot, 'labels', 'y.csv'), 'id,label\n1,GROUND-TRUTH-LABEL\n')
    await chmod(dataRoot, 0o755)
  })

  afterEach(async () => {
    expect(await leftovers({ ids: seen, labels, images: [rootImage] })).toEqual([])
  })

  afterAll(async () => {
    await removeImage(rootImageTag)
    await rm(dataRoot, { recursive: true, force: true })
  })

  async function runPhase(request: PhaseRunRequest) {
    const { result } = await timedRun(request)
    seen.push(result.containerId)
    return result
  }

  it('cannot connect anywhere without a network, while the same probe on a bridge can', async () => {
    const host = await mirrorHost()
    const blocked = await runPhase(
      phaseRequest(
        python,
        [
          'sh',
          '-c',
          `python3 -c '${PROBE}' 1.1.1.1 53; python3 -c '${PROBE}' ${host} 80; cat /proc/net/dev`,
        ],
        labels,
      ),
    )
    // Only the loopback interface exists.
    expect(blocked.log.text).toMatch(/^\s*lo:/m)
    expect(blocked.log.text).not.toMatch(/^\s*eth\d+:/m)
    expect(blocked.log.text).not.toContain('connected')
    expect(blocked.log.text.match(/^failed /gm)).toHaveLength(2)
    expect(blocked.log.text).toContain('Network is unreachable')

    // The control, through plain dockerode: the runtime only ever asks for no network.
    const control = await docker.createContainer({
      Image: python,
      Cmd: ['python3', '-c', PROBE, host, '80'],
      Labels: labels,
      HostConfig: { NetworkMode: 'bridge' },
    })
    seen.push(control.id)
    try {
      await control.start()
      const exit = (await control.wait()) as { StatusCode: number }
      const logs = (await control.logs({ stdout: true, stderr: true })).toString('latin1')
      expect(logs).toContain('connected')
      expect(exit.StatusCode).toBe(0)
    } finally {
      await control.remove({ force: true })
    }
  })

  it('passes no variable of its own environment into the container', async () => {
    const secret = `host-secret-${randomUUID()}`
    process.env.PROCTOR_TEST_HOST_SECRET = secret
    try {
      const command = [
        'sh',
        '-c',
        'tr "\\0" "\\n" < /proc/self/environ; env; tr "\\0" "\\n" < /proc/1/environ; grep -rs host-secret /proc/*/environ; true',
      ]
      const result = await runPhase(
        phaseRequest(busybox, command, labels, { env: { PROCTOR_INPUT: '/proctor/input' } }),
      )
      expect(result.log.text).toContain('PROCTOR_INPUT=/proctor/input')
      expect(result.log.text).not.toContain(secret)
      expect(result.log.text).not.toContain('PROCTOR_TEST_HOST_SECRET')
    } finally {
      delete process.env.PROCTOR_TEST_HOST_SECRET
    }
  })

  it('shows the inputs read-only and nothing of a folder it does not mount', async () => {
    const labelsDir = path.join(dataRoot, 'labels')
    const command = [
      'sh',
      '-c',
      [
        'cat /proctor/input/x.csv',
        'ls /proctor/labels',
        `cat ${labelsDir}/y.csv`,
        'find / -path /proc -prune -o -path /sys -prune -o -name y.csv -print',
        'touch /proctor/input/new',
        'echo end',
      ].join('; '),
    ]
    const mounts = [
      { hostPath: path.join(dataRoot, 'inputs'), containerPath: '/proctor/input', readOnly: true },
    ]
    const result = await runPhase(phaseRequest(busybox, command, labels, { mounts }))

    expect(result.log.text).toContain('input-row')
    expect(result.log.text).toMatch(/ls: \/proctor\/labels: No such file or directory/)
    expect(result.log.text).toMatch(/touch: \/proctor\/input\/new: Read-only file system/)
    expect(result.log.text).not.toContain('GROUND-TRUTH')
    // find printed no path: the labels file is nowhere in the container's file system.
    expect(result.log.text).not.toMatch(/^\/.*y\.csv$/m)
    expect(result.log.text).toContain('end')
  })

  it('runs an image that asks for root as uid 1000, read-only, without capabilities', async () => {
    const result = await runPhase(phaseRequest(rootImage, undefined, labels))
    // Only the group proctor names: none from the image's /etc/group.
    expect(result.log.text).toMatch(/^uid=1000 groups=1000$/m)
    expect(result.log.text).toContain('touch: /x: Read-only file system')
    expect(result.log.text).toMatch(/^CapEff:\s+0000000000000000$/m)
    expect(result.log.text).toMatch(/^CapPrm:\s+0000000000000000$/m)
    expect(result.log.text).toMatch(/^CapBnd:\s+0000000000000000$/m)
    expect(result.log.text).toMatch(/^NoNewPrivs:\s+1$/m)
    expect(result.log.text).toMatch(/^Seccomp:\s+2$/m)
    expect(result.log.text).toContain('tmp-writable')
    expect(result.log.text).toContain('home=/tmp')
  })

  it('refuses to run as root or from a tag that can move', async () => {
    await expect(
      runtime.runPhase(phaseRequest(busybox, ['id'], labels, { user: '0:0' })),
    ).rejects.toThrow(/numeric uid:gid other than root's/)
    await expect(
      runtime.runPhase(phaseRequest(busybox, ['id'], labels, { user: 'participant' })),
    ).rejects.toThrow(/numeric uid:gid/)
    await expect(runtime.runPhase(phaseRequest(BUSYBOX, ['id'], labels))).rejects.toThrow(/pinned/)
  })

  it('tells a missing or non-executable entry point from a script that fails with 127', async () => {
    const missing = await runPhase(
      phaseRequest(busybox, ['./run.sh'], labels, { workingDir: '/home/participant' }),
    )
    expect(missing).toMatchObject({ exitCode: 127, execFailed: true })
    expect(classifyParticipantRun(missing, phaseRequest(busybox, [], labels).limits)?.code).toBe(
      'entrypoint_missing',
    )

    const notExecutable = await runPhase(phaseRequest(busybox, ['/etc/passwd'], labels))
    expect(notExecutable).toMatchObject({ exitCode: 126, execFailed: true })

    const innerMissing = await runPhase(
      phaseRequest(busybox, ['sh', '-c', 'no-such-tool --train'], labels),
    )
    expect(innerMissing).toMatchObject({ exitCode: 127, execFailed: false })
    expect(classifyParticipantRun(innerMissing, phaseRequest(busybox, [], labels).limits)).toEqual({
      code: 'crashed',
      message: 'exited with code 127',
    })
  })

  it('reads a path in an image without running it', async () => {
    await expect(runtime.statImageFile(rootImage, '/bin/sh')).resolves.toMatchObject({
      isExecutable: true,
      linkTarget: '/bin/busybox',
    })
    await expect(runtime.statImageFile(rootImage, '/etc')).resolves.toMatchObject({
      isDirectory: true,
    })
    await expect(runtime.statImageFile(rootImage, '/etc/group')).resolves.toMatchObject({
      isExecutable: false,
      isDirectory: false,
    })
    await expect(runtime.statImageFile(rootImage, '/home/participant/run.sh')).resolves.toBeNull()
  })

  it('removes only proctor containers with every given label', async () => {
    const sweep = { ...labels, 'proctor.sweep': randomUUID() }
    const ours = await docker.createContainer({
      Image: busybox,
      Cmd: ['true'],
      Labels: { ...sweep, proctor: '1' },
    })
    const foreign = await docker.createContainer({ Image: busybox, Cmd: ['true'], Labels: sweep })
    seen.push(ours.id, foreign.id)
    try {
      await expect(runtime.removeByLabel(sweep)).resolves.toBe(1)
      const remaining = (await leftovers({ ids: [ours.id, foreign.id] })).map((info) => info.Id)
      expect(remaining).toEqual([foreign.id])
    } finally {
      await foreign.remove({ force: true })
    }
  })
})
