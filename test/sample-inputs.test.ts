import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { preprocessAudio } from '../orchestrator/data/audio-preprocessing';
import { buildDataset } from '../orchestrator/data/dataset-builder';
import { preprocessImage, readImageFile } from '../orchestrator/data/image-preprocessing';
import { loadDataset } from '../orchestrator/data/manifest';
import { exportSampleInputs } from '../orchestrator/data/sample-inputs';
import { encodeWav16, readWavFile } from '../orchestrator/data/wav';
import { InputError } from '../orchestrator/util/errors';

const hasEspeak = !spawnSync('espeak-ng', ['--version']).error;
const withEspeak = hasEspeak ? it : it.skip;

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-sample-inputs-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

function largestDifference(a: Float32Array, b: Float32Array): number {
  let largest = 0;
  a.forEach((value, i) => (largest = Math.max(largest, Math.abs(value - b[i]))));
  return largest;
}

function rowOf(data: Float32Array, index: number, width: number): Float32Array {
  return data.subarray(index * width, (index + 1) * width);
}

/** Files that `dyncim predict` would read, preprocessed the way it does. */
function preprocessExported(files: { wav: string; image: string }) {
  const audio = readWavFile(files.wav);
  const image = readImageFile(files.image);
  return {
    audio: preprocessAudio(audio.samples, audio.sampleRate),
    visual: preprocessImage(image.pixels, image.width, image.height),
  };
}

describe('exportSampleInputs', () => {
  const fsddDir = path.join(folder, 'recordings');
  const datasetDir = path.join(folder, 'fsdd-dataset');

  beforeAll(async () => {
    fs.mkdirSync(fsddDir);
    for (let digit = 0; digit < 10; digit++) {
      for (const index of [2, 7, 20]) {
        const samples = Float32Array.from(
          { length: 3000 },
          (_, n) => 0.3 * Math.sin(n * (digit + 2) * 0.03),
        );
        fs.writeFileSync(
          path.join(fsddDir, `${digit}_kim_${index}.wav`),
          encodeWav16({ samples, sampleRate: 8000 }),
        );
      }
    }
    await buildDataset({
      source: 'fsdd',
      fsddDir,
      outDir: datasetDir,
      seed: 5,
      imageCorruption: 0.7,
      audioSnrDb: null,
    });
  });

  it('writes the first test sample: the recording itself and its corrupted image', async () => {
    const outDir = path.join(folder, 'examples');

    const result = await exportSampleInputs({ datasetDir, outDir });

    const dataset = loadDataset(datasetDir);
    const sample = dataset.manifest.samples[result.index];
    expect(result.index).toBe(dataset.splits.test[0]);
    expect(result.split).toBe('test');
    expect(result.label).toBe(String(sample.label));
    const recording = path.join(fsddDir, sample.sources.audio.replace('fsdd:', ''));
    expect(fs.readFileSync(result.wav).equals(fs.readFileSync(recording))).toBe(true);

    const inputs = preprocessExported(result);
    expect(
      largestDifference(inputs.audio, rowOf(dataset.inputs.audio.data, result.index, 4096)),
    ).toBeLessThan(1e-6);
    // the PNG holds 8-bit levels: half a level is 0.5 / 255 / 0.3081 = 0.0064 after standardising
    expect(
      largestDifference(inputs.visual, rowOf(dataset.inputs.visual.data, result.index, 3072)),
    ).toBeLessThan(0.007);
  });

  it('exports a chosen index and rejects one that does not exist', async () => {
    const outDir = path.join(folder, 'chosen');

    const result = await exportSampleInputs({ datasetDir, outDir, index: 11 });

    expect(path.basename(result.wav)).toBe('sample-11.wav');
    expect(path.basename(result.image)).toBe('sample-11.png');
    await expect(exportSampleInputs({ datasetDir, outDir, index: 30 })).rejects.toThrow(
      /has no sample 30 \(it has 30\)/,
    );
  });

  it('notices a corruption record that no longer matches the build settings', async () => {
    const edited = path.join(folder, 'edited');
    fs.cpSync(datasetDir, edited, { recursive: true });
    const file = path.join(edited, 'dataset.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
    manifest.build.imageCorruption = 0.2;
    fs.writeFileSync(file, JSON.stringify(manifest));

    const attempt = exportSampleInputs({ datasetDir: edited, outDir: path.join(folder, 'never') });

    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(/does not match the build settings/);
  });

  withEspeak('re-creates a synthesized clip close to the one in the dataset', async () => {
    const synthDir = path.join(folder, 'synth-dataset');
    const cacheDir = path.join(folder, 'espeak-cache');
    await buildDataset({ source: 'synth', outDir: synthDir, samplesPerClass: 3, cacheDir });

    const result = await exportSampleInputs({
      datasetDir: synthDir,
      outDir: path.join(folder, 'synth-examples'),
      cacheDir,
    });

    const dataset = loadDataset(synthDir);
    expect(readWavFile(result.wav).sampleRate).toBe(22050);
    const inputs = preprocessExported(result);
    // 16-bit quantisation of a noisy clip moves the standardised log-mel values only slightly
    expect(
      largestDifference(inputs.audio, rowOf(dataset.inputs.audio.data, result.index, 4096)),
    ).toBeLessThan(0.02);
  });
});
