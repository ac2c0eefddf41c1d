import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'

import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createNoCacheBuilders, type NoCacheBuilders } from '../../src/archive/no-cache-builders.ts'
import { BUILD_NETWORK } from '../../src/build/build-network.ts'
import type { Builder } from '../../src/build/builder.ts'
import { DockerfileBuilder } from '../../src/build/dockerfile-builder.ts'
import { Repo2DockerBuilder } from '../../src/build/repo2docker.ts'
import { assertServicesUp } from '../support/services.ts'
import {
  captureLog,
  docker,
  makeRepo,
  removeDir,
  removeImages,
  REPO2DOCKER,
  silentLogger,
  uniqueName,
} from './support.ts'

/**
 * The build network, checked from inside a real build: a RUN step probes the package
 * mirror (it must connect: the positive control), a server this test runs on the host
 * (addressed by the network's gateway and by the host's primary address), cloud metadata and
 * a private address (all must fail). The same probe on the default bridge reaches the host
 * server, so the block is the network's doing, not a broken probe.
 */
const PROBE = `
import json, socket, sys
def connect(address):
    host, port = address.rsplit(':', 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return 'connected'
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
targets = dict(arg.split('=', 1) for arg in sys.argv[2:])
print('PROBE ' + json.dumps({name: connect(a) for name, a in targets.items()}), flush=True)
`

type ProbeResult = Record<'mirror' | 'gateway' | 'hostIp' | 'metadata' | 'private', string>

const images = new Set<string>()
const peers: string[] = []
let server: net.Server
let port: number
let gateway: string
let hostIp: string
let noCache: NoCacheBuilders

beforeAll(async () => {
  await assertServicesUp(['docker', 'images'])
  const network = (await docker
    .getNetwork(BUILD_NETWORK)
    .inspect()
    .catch(() => {
      throw new Error(`network ${BUILD_NETWORK} is missing: run bash scripts/build-network.sh`)
    })) as { IPAM: { Config: { Gateway: string }[] } }
  gateway = network.IPAM.Config[0]?.Gateway ?? ''
  hostIp = primaryAddress()
  server = net.createServer((socket) => {
    peers.push(socket.remoteAddress ?? '')
    socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve))
  port = (server.address() as net.AddressInfo).port
  noCache = await createNoCacheBuilders(docker, REPO2DOCKER, silentLogger)
})

afterAll(async () => {
  server?.close()
  await noCache?.dispose()
  await removeImages(images)
})

/** Builds the probe with a builder and returns what the RUN step printed. */
async function probe(builder: Builder): Promise<ProbeResult> {
  // A fresh nonce in the RUN line: a cached layer would print nothing.
  const nonce = randomBytes(6).toString('hex')
  const targets = {
    mirror: `${mirrorHost()}:80`,
    gateway: `${gateway}:${port}`,
    hostIp: `${hostIp}:${port}`,
    metadata: '169.254.169.254:80',
    private: '10.0.0.1:80',
  }
  const args = Object.entries(targets).map(([name, address]) => `${name}=${address}`)
  const dir = makeRepo({
    'probe.py': PROBE,
    Dockerfile: [
      'FROM proctor/python:3.11',
      'COPY probe.py /tmp/probe.py',
      `RUN python3 /tmp/probe.py ${nonce} ${args.join(' ')}`,
      '',
    ].join('\n'),
  })
  const imageName = `${uniqueName(`proctor-test/build-network-${builder.name}`)}:t1`
  images.add(imageName)
  const log = captureLog()
  try {
    await builder.build({
      contextDir: dir,
      imageName,
      labels: { 'proctor.test': 'build-network' },
      timeoutMs: 120_000,
      maxImageBytes: 1024 ** 3,
      onLog: log.onLog,
    })
  } finally {
    removeDir(dir)
  }
  const line = log
    .text()
    .split('\n')
    .find((l) => l.startsWith('PROBE {'))
  expect(line, log.text()).toBeDefined()
  return JSON.parse((line ?? '').slice('PROBE '.length)) as ProbeResult
}

function expectBlocked(result: ProbeResult): void {
  expect(result.mirror).toBe('connected')
  for (const target of ['gateway', 'hostIp', 'metadata', 'private'] as const) {
    expect(result[target], target).not.toBe('connected')
  }
}

describe('the build network', () => {
  it('lets a Dockerfile build reach the mirror but not the host or private ranges', async () => {
    expectBlocked(await probe(new DockerfileBuilder(docker, silentLogger)))
  })

  it('lets a repo2docker build reach the mirror but not the host or private ranges', async () => {
    expectBlocked(await probe(new Repo2DockerBuilder(REPO2DOCKER, silentLogger, { docker })))
  })

  it('holds for the no-cache builders proctor verify uses', async () => {
    expectBlocked(await probe(noCache.builders.repo2docker))
    expectBlocked(await probe(noCache.builders.dockerfile))
  })

  it('never lets a connection from the build subnet reach the host server', () => {
    expect(peers.filter((peer) => peer.includes('172.31.240.'))).toEqual([])
  })

  it('reaches the host on the default bridge (the control that the block is real)', async () => {
    const before = peers.length
    const result = await probe(new DockerfileBuilder(docker, silentLogger, { network: null }))

    expect(result.mirror).toBe('connected')
    expect(result.gateway).toBe('connected')
    expect(result.hostIp).toBe('connected')
    expect(peers.length).toBeGreaterThan(before)
  })

  it('builds on the default network with a warning when the network is missing', async () => {
    const warnings: string[] = []
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) })
    const missing = `proctor-build-missing-${randomBytes(3).toString('hex')}`

    const result = await probe(new DockerfileBuilder(docker, logger, { network: missing }))

    expect(result.hostIp).toBe('connected')
    expect(warnings.join('')).toContain(`build network ${missing} does not exist`)
  })
})

/** The host of the first Debian mirror in the machine's apt sources. */
function mirrorHost(): string {
  const sources = readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8')
  const uri = /^URIs:\s*(\S+)/m.exec(sources)?.[1] ?? 'http://deb.debian.org/debian'
  return new URL(uri).hostname
}

/** The host's address on its default route's interface (not loopback, not a Docker bridge). */
function primaryAddress(): string {
  const routes = readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)
  const iface = routes.map((r) => r.split('\t')).find((f) => f[1] === '00000000')?.[0]
  const address = os.networkInterfaces()[iface ?? '']?.find((a) => a.family === 'IPv4')?.address
  if (!address) throw new Error('cannot find the host primary IPv4 address')
  return address
}
