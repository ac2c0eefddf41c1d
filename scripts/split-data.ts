/**
 * Splits the data sets in data/ into the example challenges' hidden inputs and labels and the
 * participant baselines' public training data. Deterministic: a row's index alone decides
 * where it goes, and values are copied as text, so a second run writes the same bytes.
 *
 *   node --import tsx scripts/split-data.ts
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'

const ROOT = path.resolve(import.meta.dirname, '..')

interface DataSet {
  readonly name: string
  readonly file: string
  /** Lines before the first row. */
  readonly headerLines: number
  readonly features: readonly string[]
  /** A row whose index is a multiple of this is in the hidden test set. */
  readonly testEvery: number
}

const DATA_SETS: readonly DataSet[] = [
  {
    name: 'iris',
    file: 'data/iris.csv',
    headerLines: 1,
    features: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'],
    testEvery: 3,
  },
  {
    name: 'digits',
    file: 'data/digits.csv.gz',
    headerLines: 0,
    features: Array.from({ length: 64 }, (_, i) => `p${i}`),
    testEvery: 5,
  },
]

function readRows(dataSet: DataSet): string[][] {
  const bytes = readFileSync(path.join(ROOT, dataSet.file))
  const text = (dataSet.file.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8')
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '')
  const rows = lines.slice(dataSet.headerLines).map((line) => line.split(','))
  for (const [index, row] of rows.entries()) {
    if (row.length !== dataSet.features.length + 1) {
      throw new Error(
        `${dataSet.file}: row ${index} has ${row.length} fields; expected ${dataSet.features.length + 1}`,
      )
    }
  }
  return rows
}

function writeCsv(file: string, header: readonly string[], rows: readonly string[][]): void {
  mkdirSync(path.dirname(file), { recursive: true })
  const lines = [header, ...rows].map((fields) => fields.join(','))
  writeFileSync(file, `${lines.join('\n')}\n`)
}

function splitDataSet(dataSet: DataSet): string {
  const rows = readRows(dataSet)
  const inputs: string[][] = []
  const labels: string[][] = []
  const train: string[][] = []
  for (const [index, row] of rows.entries()) {
    const features = row.slice(0, -1)
    const label = row.at(-1) ?? ''
    if (index % dataSet.testEvery === 0) {
      inputs.push([String(index), ...features])
      labels.push([String(index), label])
    } else {
      train.push([...features, label])
    }
  }

  const challengeDir = path.join(ROOT, 'examples/challenges', dataSet.name, 'data')
  writeCsv(path.join(challengeDir, 'inputs/test.csv'), ['id', ...dataSet.features], inputs)
  writeCsv(path.join(challengeDir, 'labels/labels.csv'), ['id', 'label'], labels)
  writeCsv(
    path.join(ROOT, 'examples/participants', dataSet.name, 'train.csv'),
    [...dataSet.features, 'label'],
    train,
  )
  return `${dataSet.name}: ${inputs.length} test rows, ${train.length} training rows`
}

for (const dataSet of DATA_SETS) console.log(splitDataSet(dataSet))
