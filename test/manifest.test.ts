import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DATASET_FORMAT, loadDataset, validateManifest } from '../orchestrator/data/manifest';
import { InputError } from '../orchestrator/util/errors';
import { writeNpy } from '../orchestrator/util/npy';

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-manifest-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

const clean = { severity: 0, noiseStd: 0, occluder: null };

function manifest(): Record<string, any> {
  return {
    format: DATASET_FORMAT,
    name: 'tiny',
    seed: 0,
    source: 'fsdd',
    createdAt: '2024-01-01T00:00:00.000Z',
    classes: ['0', '1', '2'],
    modalities: [
      { name: 'audio', inputShape: [1, 2, 2], preprocessing: 'audio-logmel-v1' },
      { name: 'visual', inputShape: [3, 1, 1], preprocessing: 'image-v1' },
    ],
    protocol: 'by hand',
    build: {},
    samples: [
      {
        index: 0,
        label: 2,
        split: 'train',
        speaker: 'a',
        sources: { audio: 'x', visual: 'y' },
        imageCorruption: clean,
      },
      {
        index: 1,
        label: 0,
        split: 'test',
        speaker: 'b',
        sources: { audio: 'x', visual: 'y' },
        imageCorruption: clean,
      },
      {
        index: 2,
        label: 1,
        split: 'train',
        speaker: 'a',
        sources: { audio: 'x', visual: 'y' },
        imageCorruption: clean,
      },
    ],
  };
}

let counter = 0;

/** Writes a valid 3-sample dataset, lets `spoil` change it, and returns its folder. */
function makeDataset(spoil: (dir: string, json: Record<string, any>) => void = () => undefined) {
  const dir = path.join(folder, `dataset-${counter++}`);
  fs.mkdirSync(dir);
  const json = manifest();
  writeNpy(path.join(dir, 'audio.npy'), {
    data: Float32Array.from({ length: 12 }, (_, i) => i),
    shape: [3, 1, 2, 2],
  });
  writeNpy(path.join(dir, 'visual.npy'), {
    data: new Float32Array(9).fill(0.5),
    shape: [3, 3, 1, 1],
  });
  writeNpy(path.join(dir, 'labels.npy'), { data: new Int32Array([2, 0, 1]), shape: [3] });
  spoil(dir, json);
  if (!fs.existsSync(path.join(dir, 'dataset.json'))) {
    fs.writeFileSync(path.join(dir, 'dataset.json'), JSON.stringify(json));
  }
  return dir;
}

function expectInputError(dir: string, file: string, message: RegExp): void {
  try {
    loadDataset(dir);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).path).toBe(path.join(dir, file));
    expect((error as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected loadDataset(${dir}) to fail`);
}

describe('loadDataset', () => {
  it('returns the manifest, arrays, labels and split indices of a valid folder', () => {
    const loaded = loadDataset(makeDataset());

    expect(loaded.manifest.name).toBe('tiny');
    expect(loaded.inputs.audio.shape).toEqual([3, 1, 2, 2]);
    expect(loaded.inputs.audio.data[5]).toBe(5);
    expect(loaded.inputs.visual.shape).toEqual([3, 3, 1, 1]);
    expect(Array.from(loaded.labels)).toEqual([2, 0, 1]);
    expect(loaded.splits).toEqual({ train: [0, 2], val: [], test: [1] });
  });

  it('names a missing folder and a missing or unreadable manifest', () => {
    const absent = path.join(folder, 'absent');
    expect(() => loadDataset(absent)).toThrow(/absent: dataset folder not found/);

    const withoutManifest = makeDataset();
    fs.rmSync(path.join(withoutManifest, 'dataset.json'));
    expectInputError(withoutManifest, 'dataset.json', /dataset manifest not found/);
    expectInputError(
      makeDataset((dir) => fs.writeFileSync(path.join(dir, 'dataset.json'), '{ "format": ')),
      'dataset.json',
      /not valid JSON/,
    );
  });

  it('checks the manifest fields', () => {
    const cases: Array<[(json: Record<string, any>) => void, RegExp]> = [
      [
        (json) => (json.format = 'dyncim-dataset/0'),
        /"format" is "dyncim-dataset\/0", expected "dyncim-dataset\/1"/,
      ],
      [(json) => (json.classes = ['only']), /at least two class names/],
      [(json) => (json.modalities[1].inputShape = [3, 0, 1]), /modalities\[1\]\.inputShape/],
      [(json) => delete json.modalities[0].preprocessing, /modalities\[0\]\.preprocessing/],
      [(json) => (json.samples[1].index = 7), /samples\[1\]\.index is 7, expected 1/],
      [
        (json) => (json.samples[2].label = 3),
        /samples\[2\]\.label is 3, expected an integer in \[0, 3\)/,
      ],
      [(json) => (json.samples[0].split = 'dev'), /samples\[0\]\.split is "dev"/],
      [(json) => (json.samples = []), /"samples" must be a non-empty list/],
    ];

    for (const [spoil, message] of cases) {
      expectInputError(
        makeDataset((_, json) => spoil(json)),
        'dataset.json',
        message,
      );
    }
  });

  it('checks every array against the manifest, naming the array file', () => {
    expectInputError(
      makeDataset((dir) =>
        writeNpy(path.join(dir, 'audio.npy'), { data: new Float32Array(8), shape: [2, 1, 2, 2] }),
      ),
      'audio.npy',
      /shape \[2,1,2,2\], expected \[3,1,2,2\] from dataset\.json/,
    );
    expectInputError(
      makeDataset((dir) =>
        writeNpy(path.join(dir, 'audio.npy'), { data: new Int32Array(12), shape: [3, 1, 2, 2] }),
      ),
      'audio.npy',
      /expected float32 inputs, found Int32Array/,
    );
    expectInputError(
      makeDataset((dir) => fs.rmSync(path.join(dir, 'visual.npy'))),
      'visual.npy',
      /file not found/,
    );
    const withNaN = new Float32Array(9);
    withNaN[4] = NaN;
    expectInputError(
      makeDataset((dir) =>
        writeNpy(path.join(dir, 'visual.npy'), { data: withNaN, shape: [3, 3, 1, 1] }),
      ),
      'visual.npy',
      /value 4 is NaN/,
    );
  });

  it('checks the labels against the samples', () => {
    expectInputError(
      makeDataset((dir) =>
        writeNpy(path.join(dir, 'labels.npy'), { data: new Int32Array([2, 1, 1]), shape: [3] }),
      ),
      'labels.npy',
      /label 1 is 1, but dataset\.json says 0/,
    );
    expectInputError(
      makeDataset((dir) =>
        writeNpy(path.join(dir, 'labels.npy'), { data: new Float32Array(3), shape: [3] }),
      ),
      'labels.npy',
      /expected int32 labels of shape \[3\], found Float32Array \[3\]/,
    );
  });
});

describe('validateManifest', () => {
  it('accepts the tiny manifest and names the file it was given on failure', () => {
    expect(validateManifest(manifest(), 'm.json').samples.length).toBe(3);
    expect(() => validateManifest([], 'm.json')).toThrow(/^m\.json: expected a JSON object$/);
  });
});
