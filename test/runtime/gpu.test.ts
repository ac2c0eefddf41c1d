import { describe, expect, it } from 'vitest'

import { buildCreateOptions } from '../../src/runtime/container-spec.ts'
import { connectDocker } from '../../src/runtime/docker-client.ts'
import { imageId, phaseRequest, testLabels, BUSYBOX } from './support.ts'

const docker = connectDocker()

describe('GPU phases', () => {
  it('create a container that carries the device request, without any GPU on this host', async () => {
    // No GPU and no NVIDIA toolkit here: the container is created and inspected, never started.
    const request = phaseRequest(await imageId(BUSYBOX), ['true'], testLabels('gpu'), { gpus: 2 })
    const container = await docker.createContainer(buildCreateOptions(request))
    try {
      const info = await container.inspect()
      expect(info.HostConfig.DeviceRequests).toEqual([
        { Driver: '', Count: 2, DeviceIDs: null, Capabilities: [['gpu']], Options: {} },
      ])
    } finally {
      await container.remove({ force: true })
    }
  })
})
