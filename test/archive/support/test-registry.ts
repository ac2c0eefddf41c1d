import { spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import type { RegistryAdminConfig } from '../../../src/archive/registry-service.ts'

/**
 * A registry of the test's own: `docker-registry serve` (distribution 2.8, like the shared
 * one) on a free loopback port, with its data in a temporary folder. Garbage collection
 * restarts the registry and measures its disk, which must not disturb the registry every
 * other test pushes to; the engine treats 127.0.0.0/8 as an insecure registry, so it pushes
 * here without configuration.
 */
export interface TestRegistry {
  readonly address: string
  readonly dir: string
  readonly dataDir: string
  readonly blobsDir: string
  readonly admin: RegistryAdminConfig
  stop(): Promise<void>
}

export async function startTestRegistry(): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-registry-'))
  const dataDir = path.join(dir, 'data')
  mkdirSync(dataDir)
  const port = await freePort()
  const address = `127.0.0.1:${port}`
  const admin: RegistryAdminConfig = {
    address,
    configFile: path.join(dir, 'config.yml'),
    pidFile: path.join(dir, 'registry.pid'),
    logFile: path.join(dir, 'registry.log'),
    binary: 'docker-registry',
  }
  writeFileSync(
    admin.configFile,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dataDir}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: ${address}`,
      '',
    ].join('\n'),
  )
  const log = openSync(admin.logFile, 'a')
  const child = spawn(admin.binary, ['serve', admin.configFile], {
    detached: true,
    stdio: ['ignore', log, log],
  })
  closeSync(log)
  child.unref()
  writeFileSync(admin.pidFile, `${child.pid}\n`)
  await waitUntilUp(address)

  return {
    address,
    dir,
    dataDir,
    blobsDir: path.join(dataDir, 'docker/registry/v2/blobs'),
    admin,
    async stop() {
      // Garbage collection restarts it: the pid file names the current process, which this
      // test (through proctor's code) started.
      if (existsSync(admin.pidFile)) {
        const pid = Number(readFileSync(admin.pidFile, 'utf8').trim())
        const cmdline = readCmdline(pid)
        if (
          cmdline.includes('docker-registry') &&
          cmdline.includes(admin.configFile.replace(/\.yml$/, ''))
        ) {
          process.kill(pid, 'SIGTERM')
          for (let i = 0; i < 100 && readCmdline(pid) !== ''; i++) await sleep(50)
        }
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function waitUntilUp(address: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://${address}/v2/`)).status === 200) return
    } catch {
      // not listening yet
    }
    await sleep(50)
  }
  throw new Error(`the test registry on ${address} did not come up`)
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
}

function readCmdline(pid: number): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    if (/^State:\s+Z/m.test(status)) return ''
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')
  } catch {
    return ''
  }
}
