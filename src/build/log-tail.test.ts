import { describe, expect, it } from 'vitest'

import { BuildContainers } from './build-containers.ts'
import { LogTail } from './builder.ts'

describe('LogTail', () => {
  it('keeps the last lines across chunks that split lines', () => {
    const tail = new LogTail(3)
    tail.write('one\ntw')
    tail.write('o\nthree\nfo')
    tail.write('ur')

    expect(tail.text()).toBe('two\nthree\nfour')
  })

  it('treats a carriage return as a line end', () => {
    const tail = new LogTail(5)
    tail.write('Fetching base image...\rdone\n')

    expect(tail.text()).toBe('Fetching base image...\ndone')
  })
})

describe('BuildContainers', () => {
  it('tracks the step containers still running', () => {
    const containers = new BuildContainers()
    containers.observe(
      ' ---> Running in e4c8670b3596\nstep output\nRemoving intermediate container e4c8670b3596\n',
    )
    containers.observe(' ---> Running in 9917ce94')
    containers.observe('e532\n')

    expect(containers.ids).toEqual(['9917ce94e532'])
  })
})
