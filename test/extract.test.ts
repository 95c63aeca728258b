import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import pino from 'pino';
import { extractFeatures, listDatasetModalities } from '../orchestrator/encoders/extract';
import { sha256OfFile } from '../orchestrator/encoders/feature-cache';
import { ConfigError, InputError } from '../orchestrator/util/errors';
import { rootLogger, setRootLogger } from '../orchestrator/util/logger';
import { readNpy, writeNpy } from '../orchestrator/util/npy';
import { writeTinyDataset } from './helpers/tiny-dataset';
import { TINY_WEIGHTS, writeTinyModel } from './helpers/tiny-encoder';

let scratch: string;
let datasetDir: string;
let cacheDir: string;
let encoderPath: string;
let logLines: Record<string, unknown>[];
const originalLogger = rootLogger();

/** Sample n, pixel k holds n + k. */
function datasetInputs(samples: number, sampleSize = 16): Float32Array {
  return new Float32Array(samples * sampleSize).map(
    (_, i) => Math.floor(i / sampleSize) + (i % 16),
  );
}

// features of sample n through TINY_WEIGHTS: [16n + 120, 120n + 1240, -8] (see tiny-encoder.ts)
const EXPECTED = [
  [120, 1240, -8],
  [136, 1360, -8],
  [152, 1480, -8],
  [168, 1600, -8],
  [184, 1720, -8],
].flat();

const LABELS = [0, 1, 0, 1, 1];

function writeDataset(version = 'audio-test-v1'): void {
  writeTinyDataset(datasetDir, LABELS, [
    { name: 'audio', inputShape: [1, 4, 4], preprocessing: version, inputs: datasetInputs(5) },
  ]);
}

function extract(overrides: Partial<Parameters<typeof extractFeatures>[0]> = {}) {
  return extractFeatures({
    datasetDir,
    modality: 'audio',
    encoderPath,
    cacheDir,
    batchSize: 2,
    device: 'cpu',
    ...overrides,
  });
}

function messages(): string[] {
  return logLines.map((line) => String(line.msg));
}

beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-extract-'));
  datasetDir = path.join(scratch, 'dataset');
  cacheDir = path.join(scratch, 'cache');
  fs.mkdirSync(datasetDir);
  encoderPath = writeTinyModel(path.join(scratch, 'audio-tiny.onnx'));
  writeDataset();

  logLines = [];
  const sink = { write: (line: string) => logLines.push(JSON.parse(line)) };
  setRootLogger(pino({ level: 'info' }, sink));
});

afterEach(() => {
  setRootLogger(originalLogger);
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe('extractFeatures', () => {
  test('encodes every sample in batches (2 + 2 + 1) and writes the cache', async () => {
    const result = await extract();

    expect(Array.from(result.features)).toEqual(EXPECTED);
    expect(result.shape).toEqual([5, 3]);
    expect(result.cacheHit).toBe(false);
    expect(result.cachePath).toBe(path.join(cacheDir, 'audio-tiny.npy'));
    expect(result.encoderSha256).toBe(sha256OfFile(encoderPath));

    const cached = readNpy(result.cachePath);
    expect(cached.shape).toEqual([5, 3]);
    expect(Array.from(cached.data)).toEqual(EXPECTED);
    const metadata = JSON.parse(fs.readFileSync(path.join(cacheDir, 'audio-tiny.json'), 'utf8'));
    expect(metadata).toMatchObject({
      format: 'dyncim-feature-cache/1',
      modality: 'audio',
      encoderSha256: sha256OfFile(encoderPath),
      preprocessingVersion: 'audio-test-v1',
      inputSha256: sha256OfFile(path.join(datasetDir, 'audio.npy')),
      shape: [5, 3],
    });
    expect(messages()).toEqual(
      expect.arrayContaining(['cache miss', 'extracting features', 'features written']),
    );
  });

  test('a second call is a cache hit, logged with the path', async () => {
    await extract();
    logLines = [];

    const result = await extract();

    expect(result.cacheHit).toBe(true);
    expect(Array.from(result.features)).toEqual(EXPECTED);
    expect(logLines).toContainEqual(
      expect.objectContaining({ msg: 'cache hit', path: result.cachePath, modality: 'audio' }),
    );
    expect(messages()).not.toContain('extracting features');
  });

  test('a retrained encoder at the same path makes the cache stale and recomputes', async () => {
    await extract();
    const doubled = TINY_WEIGHTS.map((row) => row.map((weight) => 2 * weight));
    writeTinyModel(encoderPath, { weights: doubled });

    const result = await extract();

    expect(result.cacheHit).toBe(false);
    expect(Array.from(result.features)).toEqual(EXPECTED.map((value) => 2 * value));
    expect(result.encoderSha256).toBe(sha256OfFile(encoderPath));
    const stale = logLines.find((line) => line.msg === 'cache stale');
    expect(String(stale?.reason)).toMatch(/^encoderSha256 changed from [0-9a-f]{64} to/);
  });

  test('a new preprocessing version makes the cache stale', async () => {
    await extract();
    writeDataset('audio-test-v2');

    const result = await extract();

    expect(result.cacheHit).toBe(false);
    const stale = logLines.find((line) => line.msg === 'cache stale');
    expect(stale?.reason).toBe('preprocessingVersion changed from audio-test-v1 to audio-test-v2');
  });

  test('EXPECTED FAILURE: a cache array contradicting its metadata names it', async () => {
    const first = await extract();
    writeNpy(first.cachePath, { data: new Float32Array(10), shape: [5, 2] });

    await expect(extract()).rejects.toThrow(
      `${first.cachePath}: cached features are float32 [5,2]`,
    );
  });

  test("a cache edited to another width than the encoder's is recomputed, logged", async () => {
    const first = await extract();
    const metadataPath = path.join(cacheDir, 'audio-tiny.json');
    const metadata = JSON.parse(fs.readFileSync(metadataPath, 'utf8'));
    writeNpy(first.cachePath, { data: new Float32Array(5 * 256), shape: [5, 256] });
    fs.writeFileSync(metadataPath, JSON.stringify({ ...metadata, shape: [5, 256] }));
    logLines = [];

    const result = await extract();

    expect(result.cacheHit).toBe(false);
    expect(result.shape).toEqual([5, 3]);
    expect(Array.from(result.features)).toEqual(EXPECTED);
    const stale = logLines.find((line) => line.msg === 'cache stale');
    expect(stale?.reason).toBe(
      "cached feature width 256 is not the encoder's 3 (cached shape [5,256], expected [5, 3])",
    );
    expect(readNpy(first.cachePath).shape).toEqual([5, 3]);
  });

  test('EXPECTED FAILURE: a cache hit holding NaN names the cache file', async () => {
    const first = await extract();
    const features = Float32Array.from(first.features);
    features[2 * 3 + 1] = NaN;
    writeNpy(first.cachePath, { data: features, shape: [5, 3] });

    const error = await extract().catch((caught) => caught);

    expect(error).toBeInstanceOf(InputError);
    expect(error.path).toBe(first.cachePath);
    expect(error.message).toMatch(/cached features hold NaN at row 2, column 1/);
  });

  test('EXPECTED FAILURE: inputs of another shape name the file and both shapes', async () => {
    const inputPath = path.join(datasetDir, 'audio.npy');
    writeNpy(inputPath, { data: datasetInputs(5, 25), shape: [5, 1, 5, 5] });

    const error = await extract().catch((caught) => caught);

    expect(error).toBeInstanceOf(InputError);
    expect(error.path).toBe(inputPath);
    expect(error.message).toMatch(
      /expected float32 \[N, 1, 4, 4\] .* found Float32Array \[5,1,5,5\]/,
    );
    expect(fs.existsSync(cacheDir)).toBe(false);
  });

  test('EXPECTED FAILURE: a NaN input names the file and the sample', async () => {
    const data = datasetInputs(5);
    data[3 * 16 + 7] = NaN;
    writeNpy(path.join(datasetDir, 'audio.npy'), { data, shape: [5, 1, 4, 4] });

    await expect(extract()).rejects.toThrow(/audio\.npy: sample 3 holds NaN/);
  });

  test('EXPECTED FAILURE: more rows than the manifest has samples names the file', async () => {
    const inputPath = path.join(datasetDir, 'audio.npy');
    writeNpy(inputPath, { data: datasetInputs(6), shape: [6, 1, 4, 4] });

    await expect(extract()).rejects.toThrow(
      `${inputPath}: holds 6 rows [6,1,4,4] but dataset.json lists 5 samples`,
    );
  });

  test('EXPECTED FAILURE: a modality the manifest does not list', async () => {
    writeNpy(path.join(datasetDir, 'visual.npy'), { data: datasetInputs(5), shape: [5, 1, 4, 4] });

    await expect(extract({ modality: 'visual' })).rejects.toThrow(
      /dataset\.json: modality 'visual' is not in the dataset \(it has: audio\)/,
    );
  });

  test('EXPECTED FAILURE: a missing input array names it', async () => {
    fs.rmSync(path.join(datasetDir, 'audio.npy'));

    await expect(extract()).rejects.toThrow(/audio\.npy: modality input array not found/);
  });

  test.each([0, 2.5])('BAD CALL: batchSize %p is a ConfigError', async (batchSize) => {
    await expect(extract({ batchSize })).rejects.toThrow(ConfigError);
  });
});

describe('listDatasetModalities', () => {
  test('lists the manifest entries in order', () => {
    writeTinyDataset(datasetDir, LABELS, [
      { name: 'audio', inputShape: [1, 64, 64], preprocessing: 'audio-logmel-v1' },
      { name: 'visual', inputShape: [3, 32, 32], preprocessing: 'image-v1' },
    ]);

    expect(listDatasetModalities(datasetDir)).toEqual([
      { name: 'audio', inputShape: [1, 64, 64], preprocessing: 'audio-logmel-v1' },
      { name: 'visual', inputShape: [3, 32, 32], preprocessing: 'image-v1' },
    ]);
  });

  test('EXPECTED FAILURE: a manifest without modalities names the file', () => {
    const file = path.join(datasetDir, 'dataset.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...manifest, modalities: undefined }));

    expect(() => listDatasetModalities(datasetDir)).toThrow(`${file}: "modalities" must be`);
  });

  test('EXPECTED FAILURE: a missing manifest names the file', () => {
    fs.rmSync(path.join(datasetDir, 'dataset.json'));

    expect(() => listDatasetModalities(datasetDir)).toThrow(
      /dataset\.json: dataset manifest not found/,
    );
  });
});
