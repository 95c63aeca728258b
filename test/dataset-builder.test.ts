import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { preprocessAudio } from '../orchestrator/data/audio-preprocessing';
import { buildDataset, buildPretrainArrays } from '../orchestrator/data/dataset-builder';
import { preprocessImage } from '../orchestrator/data/image-preprocessing';
import { DatasetManifest, loadDataset } from '../orchestrator/data/manifest';
import { corruptImage, partitionMnist, readMnistImage } from '../orchestrator/data/mnist-source';
import { DIGIT_WORDS, partitionSpeakers } from '../orchestrator/data/speech-synthesis';
import { encodeWav16, readWavFile } from '../orchestrator/data/wav';
import { addWhiteNoise, parseNoisySource } from '../orchestrator/data/audio-noise';
import { ConfigError, InputError } from '../orchestrator/util/errors';
import { readNpy } from '../orchestrator/util/npy';

const hasEspeak = !spawnSync('espeak-ng', ['--version']).error;
const describeWithEspeak = hasEspeak ? describe : describe.skip;

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-builder-'));
const cacheDir = path.join(folder, 'espeak-cache');
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

function tone(hz: number): Float32Array {
  return Float32Array.from(
    { length: 4000 },
    (_, n) => 0.3 * Math.sin((2 * Math.PI * hz * n) / 8000),
  );
}

/** A fake FSDD folder: digits 0..9, speakers amy and bob, indices 0, 5 and 10. */
function makeFsdd(name: string): string {
  const dir = path.join(folder, name);
  fs.mkdirSync(dir);
  for (let digit = 0; digit < 10; digit++) {
    for (const speaker of ['amy', 'bob']) {
      for (const index of [0, 5, 10]) {
        const samples = tone(200 + 100 * digit + (speaker === 'bob' ? 30 : 0));
        const file = path.join(dir, `${digit}_${speaker}_${index}.wav`);
        fs.writeFileSync(file, encodeWav16({ samples, sampleRate: 8000 }));
      }
    }
  }
  fs.writeFileSync(path.join(dir, 'README.md'), 'not a recording');
  return dir;
}

function row(data: Float32Array, index: number, width: number): Float32Array {
  return data.subarray(index * width, (index + 1) * width);
}

function expectRowsEqual(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  let largest = 0;
  actual.forEach((value, i) => (largest = Math.max(largest, Math.abs(value - expected[i]))));
  expect(largest).toBeLessThan(1e-6);
}

describe('buildDataset from FSDD-layout recordings', () => {
  const fsddDir = makeFsdd('fsdd');
  const outDir = path.join(folder, 'fsdd-dataset');
  let manifest: DatasetManifest;

  beforeAll(async () => {
    await buildDataset({
      source: 'fsdd',
      fsddDir,
      outDir,
      seed: 3,
      imageCorruption: 0.4,
      audioSnrDb: null,
    });
    manifest = loadDataset(outDir).manifest;
  });

  it('writes one sample per recording, split by index', () => {
    const loaded = loadDataset(outDir);

    expect(fs.readdirSync(outDir).sort()).toEqual([
      'audio.npy',
      'dataset.json',
      'labels.npy',
      'visual.npy',
    ]);
    expect(loaded.manifest.samples.length).toBe(60);
    expect(loaded.splits.train.length).toBe(20);
    expect(loaded.splits.val.length).toBe(20);
    expect(loaded.splits.test.length).toBe(20);
    expect(loaded.inputs.audio.shape).toEqual([60, 1, 64, 64]);
    expect(loaded.inputs.visual.shape).toEqual([60, 3, 32, 32]);
    expect(loaded.manifest.attribution).toMatch(/Free Spoken Digit Dataset.*CC BY-SA 4\.0/);
    manifest.samples.forEach((sample) => {
      const [, digit, speaker, index] = /^fsdd:(\d)_(\w+)_(\d+)\.wav$/.exec(sample.sources.audio)!;
      expect(sample.label).toBe(Number(digit));
      expect(sample.speaker).toBe(speaker);
      expect(sample.split).toBe({ 0: 'test', 5: 'val', 10: 'train' }[Number(index)]);
    });
  });

  it('stores in each row exactly the preprocessed recording and corrupted image it names', () => {
    const loaded = loadDataset(outDir);

    for (const index of [0, 17, 59]) {
      const sample = manifest.samples[index];
      const [, file] = /^fsdd:(.*)$/.exec(sample.sources.audio)!;
      const [, digit, mnistIndex] = /^mnist:(\d)\/(\d+)$/.exec(sample.sources.visual)!;
      const recording = fs.readFileSync(path.join(fsddDir, file));
      const samples = new Float32Array(
        Array.from({ length: 4000 }, (_, n) => recording.readInt16LE(44 + 2 * n) / 32768),
      );
      const image = readMnistImage(Number(digit), Number(mnistIndex));
      const corrupted = corruptImage(image, { strength: 0.4, seed: 3, sampleKey: index });

      expectRowsEqual(row(loaded.inputs.audio.data, index, 4096), preprocessAudio(samples, 8000));
      expectRowsEqual(
        row(loaded.inputs.visual.data, index, 3072),
        preprocessImage(corrupted.image, 28, 28),
      );
      expect(sample.imageCorruption).toEqual(corrupted.record);
      expect(loaded.labels[index]).toBe(sample.label);
    }
  });

  it('draws each image from its own split pool, without repeats inside a split', () => {
    const pools = partitionMnist();

    for (const split of ['train', 'val', 'test'] as const) {
      const visuals = manifest.samples
        .filter((s) => s.split === split)
        .map((s) => s.sources.visual);
      expect(new Set(visuals).size).toBe(visuals.length);
      visuals.forEach((source) => {
        const [, digit, index] = /^mnist:(\d)\/(\d+)$/.exec(source)!;
        expect(pools[split][Number(digit)]).toContain(Number(index));
      });
    }
  });

  it('rebuilds identical arrays from one seed, other pairings from another', async () => {
    const again = path.join(folder, 'fsdd-again');
    const other = path.join(folder, 'fsdd-other');

    await buildDataset({
      source: 'fsdd',
      fsddDir,
      outDir: again,
      seed: 3,
      imageCorruption: 0.4,
      audioSnrDb: null,
    });
    await buildDataset({
      source: 'fsdd',
      fsddDir,
      outDir: other,
      seed: 4,
      imageCorruption: 0.4,
      audioSnrDb: null,
    });

    for (const file of ['audio.npy', 'visual.npy', 'labels.npy']) {
      expect(
        fs.readFileSync(path.join(again, file)).equals(fs.readFileSync(path.join(outDir, file))),
      ).toBe(true);
    }
    const sources = (dir: string) =>
      loadDataset(dir).manifest.samples.map((sample) => sample.sources.visual);
    expect(sources(other)).not.toEqual(sources(outDir));
  });

  it('names a corrupt recording and leaves no half-written folder', async () => {
    const broken = makeFsdd('fsdd-broken');
    fs.writeFileSync(path.join(broken, '4_amy_5.wav'), 'RIFF....WAVEjunk');
    const target = path.join(folder, 'never-written');

    const attempt = buildDataset({ source: 'fsdd', fsddDir: broken, outDir: target });

    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(/4_amy_5\.wav/);
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readdirSync(folder).filter((name) => name.includes('never-written'))).toEqual([]);
  });

  it('keeps defaults for options passed as undefined', async () => {
    const out = path.join(folder, 'fsdd-defaults');

    await buildDataset({
      source: 'fsdd',
      fsddDir,
      outDir: out,
      seed: undefined,
      imageCorruption: undefined,
    });

    const built = loadDataset(out).manifest;
    expect(built.build).toMatchObject({ seed: 0, imageCorruption: 1 });
    expect(built.name).toBe('fsdd-seed0');
  });

  it('refuses bad options, and to replace a folder that is not a dataset', async () => {
    const precious = path.join(folder, 'precious');
    fs.mkdirSync(precious);
    fs.writeFileSync(path.join(precious, 'notes.txt'), 'keep me');

    await expect(buildDataset({ source: 'fsdd', outDir: path.join(folder, 'x') })).rejects.toThrow(
      /fsddDir is required/,
    );
    await expect(
      buildDataset({
        source: 'fsdd',
        fsddDir,
        outDir: path.join(folder, 'y'),
        imageCorruption: 1.5,
      }),
    ).rejects.toThrow(ConfigError);
    await expect(buildDataset({ source: 'fsdd', fsddDir, outDir: precious })).rejects.toThrow(
      /not an earlier output.*refusing to replace/,
    );
    expect(fs.readFileSync(path.join(precious, 'notes.txt'), 'utf8')).toBe('keep me');
  });
});

describeWithEspeak('buildDataset from synthesized speech', () => {
  const outDir = path.join(folder, 'synth-dataset');
  let manifest: DatasetManifest;

  beforeAll(async () => {
    await buildDataset({ source: 'synth', outDir, samplesPerClass: 5, cacheDir, seed: 1 });
    manifest = loadDataset(outDir).manifest;
  });

  it('divides samplesPerClass 60/20/20 and records the build', () => {
    const counts = { train: 0, val: 0, test: 0 };
    manifest.samples.forEach((sample) => counts[sample.split]++);

    expect(counts).toEqual({ train: 30, val: 10, test: 10 });
    expect(manifest.format).toBe('dyncim-dataset/1');
    expect(manifest.name).toBe('synth-seed1');
    expect(manifest.modalities.map((m) => [m.name, m.inputShape, m.preprocessing])).toEqual([
      ['audio', [1, 64, 64], 'audio-logmel-v1'],
      ['visual', [3, 32, 32], 'image-v1'],
    ]);
    expect(manifest.build).toMatchObject({
      samplesPerClass: 5,
      speakerSeed: 0,
      imageCorruption: 1,
    });
  });

  it('takes each split speakers only from that split speaker set', () => {
    const sets = partitionSpeakers();

    manifest.samples.forEach((sample) => {
      const allowed = sets[sample.split].map((speaker) => speaker.id);
      expect(allowed).toContain(sample.speaker);
      expect(sample.sources.audio).toContain(`word=${DIGIT_WORDS[sample.label]}`);
    });
  });

  it('writes standardised audio rows', () => {
    const audio = readNpy(path.join(outDir, 'audio.npy')).data as Float32Array;

    for (let index = 0; index < 50; index += 7) {
      const values = row(audio, index, 4096);
      const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
      const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / values.length;
      expect(mean).toBeCloseTo(0, 4);
      expect(variance).toBeCloseTo(1, 3);
    }
  });
});

describeWithEspeak('buildPretrainArrays', () => {
  const outDir = path.join(folder, 'pretrain');
  const read = (file: string) => JSON.parse(fs.readFileSync(path.join(outDir, file), 'utf8'));

  beforeAll(async () => {
    await buildPretrainArrays({ outDir, audioClipsPerClass: 4, imagesPerClass: 10, cacheDir });
  });

  it('writes inputs, labels, sources and a train/heldout split for both modalities', () => {
    const audio = readNpy(path.join(outDir, 'audio', 'inputs.npy'));
    const visual = readNpy(path.join(outDir, 'visual', 'inputs.npy'));
    const visualLabels = readNpy(path.join(outDir, 'visual', 'labels.npy')).data;

    expect(audio.shape).toEqual([40, 1, 64, 64]);
    expect(visual.shape).toEqual([100, 3, 32, 32]);
    expect(readNpy(path.join(outDir, 'audio', 'labels.npy')).data).toBeInstanceOf(Int32Array);
    for (let digit = 0; digit < 10; digit++) {
      expect(Array.from(visualLabels).filter((label) => label === digit).length).toBe(10);
    }
    for (const modality of ['audio', 'visual']) {
      const split = read(`${modality}/split.json`);
      const count = modality === 'audio' ? 40 : 100;
      expect([...split.train, ...split.heldout].sort((a: number, b: number) => a - b)).toEqual(
        Array.from({ length: count }, (_, i) => i),
      );
      expect(split.heldout.length).toBeGreaterThan(0);
    }
    expect(read('visual/split.json').heldout.length).toBe(10);
    expect(read('pretrain.json').format).toBe('dyncim-pretrain/1');
  });

  it('uses pretraining speakers only and holds out whole speakers', () => {
    const pretrainIds = partitionSpeakers().pretrain.map((speaker) => speaker.id);
    const sources: string[] = read('audio/sources.json');
    const split = read('audio/split.json');
    const speakerOf = (source: string) => /^espeak-ng:(\S+)/.exec(source)![1];
    const trainSpeakers = new Set(split.train.map((i: number) => speakerOf(sources[i])));

    sources.forEach((source) => {
      expect(pretrainIds.some((id) => id.startsWith(`${speakerOf(source)}/`))).toBe(true);
    });
    split.heldout.forEach((i: number) =>
      expect(trainSpeakers.has(speakerOf(sources[i]))).toBe(false),
    );
  });

  it('uses clean images of the MNIST pretraining pool only', () => {
    const pools = partitionMnist().pretrain;
    const visual = readNpy(path.join(outDir, 'visual', 'inputs.npy')).data as Float32Array;
    const sources: string[] = read('visual/sources.json');

    sources.forEach((source, i) => {
      const [, digit, index] = /^mnist:(\d)\/(\d+)$/.exec(source)!;
      expect(pools[Number(digit)]).toContain(Number(index));
      if (i < 3) {
        const expected = preprocessImage(readMnistImage(Number(digit), Number(index)), 28, 28);
        expectRowsEqual(row(visual, i, 3072), expected);
      }
    });
  });

  it('rejects a held-out share outside (0, 1)', async () => {
    const outDir = path.join(folder, 'never');
    const attempt = buildPretrainArrays({ outDir, heldoutFraction: 1 });

    await expect(attempt).rejects.toThrow(/heldoutFraction must be in \(0, 1\), received 1/);
  });

  it('rejects more images than the smallest pool holds', async () => {
    const attempt = buildPretrainArrays({
      outDir: path.join(folder, 'too-many'),
      imagesPerClass: 5000,
      modalities: ['visual'],
    });

    await expect(attempt).rejects.toThrow(/imagesPerClass must be at most 345/);
  });
});

describe('buildDataset with noisy FSDD audio', () => {
  it('stores each recording with the noise its source names', async () => {
    const fsddDir = makeFsdd('fsdd-for-noise');
    const outDir = path.join(folder, 'noisy');

    await buildDataset({ source: 'fsdd', fsddDir, outDir, seed: 2, audioSnrDb: [-5, 5] });
    const loaded = loadDataset(outDir);

    for (const index of [0, 9]) {
      const { file, noise } = parseNoisySource(loaded.manifest.samples[index].sources.audio);
      expect(noise!.snrDb).toBeGreaterThanOrEqual(-5);
      expect(noise!.snrDb).toBeLessThanOrEqual(5);
      const clip = readWavFile(path.join(fsddDir, file));
      const expected = preprocessAudio(addWhiteNoise(clip.samples, noise!), clip.sampleRate);
      expectRowsEqual(row(loaded.inputs.audio.data, index, 4096), expected);
    }
    expect(loaded.manifest.build.audioSnrDb).toEqual([-5, 5]);
  });
});

/** A mono 32-bit float WAV (format code 3) at 8 kHz. */
function floatWav(samples: Float32Array): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + samples.byteLength, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(3, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(32000, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(32, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(samples.byteLength, 40);
  return Buffer.concat([header, Buffer.from(samples.buffer)]);
}

describe('buildDataset bad FSDD input', () => {
  it('names the recording and its first NaN sample even when noise is added', async () => {
    const fsddDir = makeFsdd('fsdd-nan');
    const samples = tone(400);
    samples[1234] = NaN;
    samples[2000] = NaN;
    fs.writeFileSync(path.join(fsddDir, '4_amy_5.wav'), floatWav(samples));
    const target = path.join(folder, 'never-written-nan');

    const attempt = buildDataset({ source: 'fsdd', fsddDir, outDir: target, audioSnrDb: [-5, 5] });

    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(/4_amy_5\.wav: audio sample 1234 is NaN/);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('names the folder and the indices of each split when a split has no recordings', async () => {
    const fsddDir = makeFsdd('fsdd-no-val');
    for (const name of fs.readdirSync(fsddDir)) {
      if (/_5\.wav$/.test(name)) fs.rmSync(path.join(fsddDir, name));
    }
    const target = path.join(folder, 'never-written-no-val');

    const error = await buildDataset({ source: 'fsdd', fsddDir, outDir: target }).catch(
      (caught: Error) => caught,
    );

    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).path).toBe(fsddDir);
    expect((error as Error).message).toContain(`${fsddDir}: FSDD folder has no val recordings`);
    expect((error as Error).message).toMatch(/train 10 and above, val 5\.\.9, test 0\.\.4/);
    expect(fs.existsSync(target)).toBe(false);
  });
});
