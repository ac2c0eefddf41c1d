import Docker from 'dockerode'
import { exportImageTree } from '../src/archive/image-tree.ts'
const docker = new Docker({ version: 'v1.41' })
const t0 = performance.now()
const tree = await exportImageTree(docker, 'proctor/python:3.11')
console.log(tree.files.size, tree.layers.length, Math.round(performance.now() - t0), 'ms', tree.diffIdsMatchConfig)
