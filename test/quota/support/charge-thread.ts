import { parentPort, workerData } from 'node:worker_threads'

import { openStore } from '../../../src/store/database.ts'
import { charge, type ChargeVariant } from './race-harness.ts'

/**
 * One racer with its own connection to the database file, as another process would have.
 * For each request it waits at a barrier until every racer is ready, then charges.
 */
interface ThreadData {
  entry: string
  file: string
  variant: ChargeVariant
}

interface ChargeRequest {
  subject: string
  submissionId: number
  now: string
  barrier: SharedArrayBuffer
  racers: number
}

const data = workerData as ThreadData
const store = openStore(`sqlite:${data.file}`)

parentPort?.on('message', (request: ChargeRequest) => {
  const arrived = new Int32Array(request.barrier)
  Atomics.add(arrived, 0, 1)
  Atomics.notify(arrived, 0)
  for (
    let seen = Atomics.load(arrived, 0);
    seen < request.racers;
    seen = Atomics.load(arrived, 0)
  ) {
    Atomics.wait(arrived, 0, seen, 100)
  }

  charge(store, data.variant, { ...request, now: new Date(request.now) }).then(
    (charged) => parentPort?.postMessage({ submissionId: request.submissionId, charged }),
    (err: unknown) =>
      parentPort?.postMessage({ submissionId: request.submissionId, error: String(err) }),
  )
})
