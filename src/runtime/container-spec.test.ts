import { describe, expect, it } from 'vitest'

import type { PhaseRunRequest } from './container-runtime.ts'
import { buildCreateOptions, validateRunRequest } from './container-spec.ts'

const IMAGE = `registry.internal:5000/subs/42@sha256:${'a'.repeat(64)}`

function request(overrides: Partial<PhaseRunRequest> = {}): PhaseRunRequest {
  return {
    image: IMAGE,
    command: ['./run.sh'],
    workingDir: '/home/participant',
    user: '1000:1000',
    env: { PROCTOR_OUTPUT: '/proctor/output' },
    mounts: [
      { hostPath: '/srv/challenge/inputs', containerPath: '/proctor/input', readOnly: true },
    ],
    outputDir: '/var/lib/proctor/runs/42/out/predict',
    limits: { timeSeconds: 600, memoryMb: 1024, cpus: 1.5, pids: 128, tmpfsMb: 64, outputMb: 64 },
    network: 'none',
    runtime: 'runc',
    gpus: 0,
    labels: { 'proctor.submission': '42' },
    logLimitBytes: 256 * 1024,
    trustProgress: false,
    ...overrides,
  }
}

describe('buildCreateOptions', () => {
  it('asks the engine for every isolation setting', () => {
    const options = buildCreateOptions(request())
    expect(options).toMatchObject({
      Image: IMAGE,
      Cmd: ['./run.sh'],
      WorkingDir: '/home/participant',
      User: '1000:1000',
      Labels: { 'proctor.submission': '42', proctor: '1' },
      Tty: false,
      NetworkDisabled: true,
    })
    expect(options.HostConfig).toMatchObject({
      Memory: 1024 * 1024 * 1024,
      MemorySwap: 1024 * 1024 * 1024,
      NanoCpus: 1_500_000_000,
      PidsLimit: 128,
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,exec,nosuid,nodev,size=64m,mode=1777' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      NetworkMode: 'none',
      Runtime: 'runc',
      Init: true,
      LogConfig: { Type: 'none', Config: {} },
      AutoRemove: false,
    })
    expect(options.HostConfig?.DeviceRequests).toBeUndefined()
  })

  it('mounts the inputs read-only and the output folder read-write', () => {
    expect(buildCreateOptions(request()).HostConfig?.Mounts).toEqual([
      { Type: 'bind', Source: '/srv/challenge/inputs', Target: '/proctor/input', ReadOnly: true },
      {
        Type: 'bind',
        Source: '/var/lib/proctor/runs/42/out/predict',
        Target: '/proctor/output',
        ReadOnly: false,
      },
    ])
  })

  it('sets HOME to /tmp unless the caller names one', () => {
    expect(buildCreateOptions(request()).Env).toEqual([
      'HOME=/tmp',
      'PROCTOR_OUTPUT=/proctor/output',
    ])
    expect(buildCreateOptions(request({ env: { HOME: '/work' } })).Env).toEqual(['HOME=/work'])
  })

  it('asks for GPUs and gVisor when the phase does', () => {
    const options = buildCreateOptions(request({ gpus: 2, runtime: 'runsc' }))
    expect(options.HostConfig?.Runtime).toBe('runsc')
    expect(options.HostConfig?.DeviceRequests).toEqual([
      { Driver: '', Count: 2, Capabilities: [['gpu']], Options: {} },
    ])
  })
})

describe('validateRunRequest', () => {
  it('accepts a pinned image, a numeric user and absolute mounts', () => {
    expect(validateRunRequest(request())).toEqual({ uid: 1000, gid: 1000 })
    expect(validateRunRequest(request({ image: `sha256:${'b'.repeat(64)}` }))).toEqual({
      uid: 1000,
      gid: 1000,
    })
  })

  it.each([
    [{ image: 'proctor/busybox:1' }, /pinned/],
    [{ user: '0:0' }, /other than root's/],
    [{ user: '1000:0' }, /other than root's/],
    [{ user: 'participant' }, /numeric uid:gid/],
    [{ mounts: [{ hostPath: 'inputs', containerPath: '/in', readOnly: true }] }, /absolute/],
    [{ mounts: [{ hostPath: '/a', containerPath: '/proctor/output', readOnly: true }] }, /taken/],
    [{ mounts: [{ hostPath: '/a', containerPath: '/tmp', readOnly: true }] }, /taken/],
    [{ outputDir: 'relative/out' }, /absolute/],
    [{ logLimitBytes: 10 }, /logLimitBytes/],
    [{ gpus: -1 }, /gpus/],
    [{ limits: { ...request().limits, memoryMb: 0 } }, /limits.memoryMb/],
    [{ limits: { ...request().limits, timeSeconds: 30 * 24 * 3600 } }, /timeSeconds/],
  ] satisfies Array<[Partial<PhaseRunRequest>, RegExp]>)('refuses %j', (overrides, message) => {
    expect(() => validateRunRequest(request(overrides))).toThrow(message)
  })
})
