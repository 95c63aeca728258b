import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadFeatureSet, selectModalities, splitIndices } from '../orchestrator/train/feature-set';
import { writeNpy } from '../orchestrator/util/npy';
import { InputError } from '../orchestrator/util/errors';

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-feature-set-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

/** A 4-sample dataset manifest and one modality's features, written by hand. */
function writeFixture(name: string, options: { split?: string; values?: number[] } = {}) {
  const dir = path.join(folder, name);
  fs.mkdirSync(dir);
  const splits = ['train', 'train', 'val', options.split ?? 'test'];
  const manifest = {
    format: 'dyncim-dataset/1',
    name,
    seed: 0,
    source: 'fsdd',
    createdAt: 'now',
    classes: ['a', 'b'],
    modalities: [{ name: 'audio', inputShape: [1, 2, 2], preprocessing: 'v1' }],
    protocol: 'by hand',
    build: {},
    samples: splits.map((split, index) => ({
      index,
      label: index % 2,
      split,
      speaker: 's',
      sources: { audio: `a${index}`, visual: `v${index}` },
      imageCorruption: { severity: 0, noiseStd: 0, occluder: null },
    })),
  };
  fs.writeFileSync(path.join(dir, 'dataset.json'), JSON.stringify(manifest));
  const values = options.values ?? [1, 2, 3, 4, 5, 6, 7, 8];
  writeNpy(path.join(dir, 'audio.npy'), { data: Float32Array.from(values), shape: [4, 2] });
  const index = {
    format: 'dyncim-features/1',
    datasetDir: '.',
    modalities: [{ name: 'audio', file: 'audio.npy', shape: [4, 2], encoderSha256: 'abc' }],
  };
  const indexFile = path.join(dir, 'features.json');
  fs.writeFileSync(indexFile, JSON.stringify(index));
  return indexFile;
}

describe('loadFeatureSet', () => {
  it('reads labels, splits and rows as written', () => {
    const set = loadFeatureSet(writeFixture('good'));
    expect(Array.from(set.labels)).toEqual([0, 1, 0, 1]);
    expect(Array.from(splitIndices(set, 'train'))).toEqual([0, 1]);
    expect(Array.from(set.modalities[0].data.subarray(2, 4))).toEqual([3, 4]);
    expect(set.modalities[0]).toMatchObject({ name: 'audio', width: 2, encoderSha256: 'abc' });
    expect(() => selectModalities(set, ['visual'])).toThrow(/'visual' is not in the features/);
  });

  it('names the index file for a structurally wrong index', () => {
    const file = writeFixture('no-modalities');
    fs.writeFileSync(file, JSON.stringify({ format: 'dyncim-features/1', datasetDir: '.' }));
    expect(() => loadFeatureSet(file)).toThrow(InputError);
    expect(() => loadFeatureSet(file)).toThrow(/features\.json: "modalities" must be/);

    fs.writeFileSync(file, 'null');
    expect(() => loadFeatureSet(file)).toThrow(/not a dyncim feature index/);
  });

  it('names the manifest for an unknown split name', () => {
    const file = writeFixture('bad-split', { split: 'training' });
    expect(() => loadFeatureSet(file)).toThrow(/dataset\.json: samples\[3\]\.split is "training"/);
  });

  it('names the feature file that holds a NaN', () => {
    const file = writeFixture('nan', { values: [1, 2, 3, Number.NaN, 5, 6, 7, 8] });
    expect(() => loadFeatureSet(file)).toThrow(/audio\.npy: feature value 3 is NaN/);
  });
});
