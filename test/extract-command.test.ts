import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { registerExtractCommands } from '../orchestrator/cli/commands/extract';
import { loadFeatureSet } from '../orchestrator/train/feature-set';
import { InputError } from '../orchestrator/util/errors';
import { writeTinyDataset } from './helpers/tiny-dataset';
import { writeTinyModel } from './helpers/tiny-encoder';

let scratch: string;
let datasetDir: string;
let modelsDir: string;
let stdout: string;
let writeSpy: jest.SpyInstance;

/** Two modalities of [3, 1, 4, 4]; audio sample n holds n everywhere, visual sample n holds 1. */
function writeDataset(): void {
  writeTinyDataset(
    datasetDir,
    [0, 1, 0],
    [
      {
        name: 'audio',
        inputShape: [1, 4, 4],
        preprocessing: 'a1',
        inputs: new Float32Array(48).map((_, i) => Math.floor(i / 16)),
      },
      {
        name: 'visual',
        inputShape: [1, 4, 4],
        preprocessing: 'v1',
        inputs: new Float32Array(48).fill(1),
      },
    ],
  );
}

async function runCli(...args: string[]): Promise<void> {
  const program = new Command('dyncim').exitOverride();
  registerExtractCommands(program);
  await program.parseAsync(args, { from: 'user' });
}

beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-extract-command-'));
  datasetDir = path.join(scratch, 'dataset');
  modelsDir = path.join(scratch, 'models');
  fs.mkdirSync(datasetDir);
  fs.mkdirSync(modelsDir);
  writeDataset();
  writeTinyModel(path.join(modelsDir, 'audio-resnet18.onnx'));
  writeTinyModel(path.join(modelsDir, 'visual-resnet18.onnx'));

  stdout = '';
  writeSpy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
});

afterEach(() => {
  writeSpy.mockRestore();
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe('dyncim extract', () => {
  test('writes features for every modality and an index that training can load', async () => {
    await runCli('extract', '--dataset', datasetDir, '--models', modelsDir, '--device', 'cpu');

    const report = JSON.parse(stdout);
    const featureIndex = path.join(datasetDir, 'features', 'features.json');
    expect(report.featureIndex).toBe(featureIndex);
    expect(report.modalities.map((entry: { name: string }) => entry.name)).toEqual([
      'audio',
      'visual',
    ]);

    const set = loadFeatureSet(featureIndex);
    expect(Array.from(set.labels)).toEqual([0, 1, 0]);
    // audio sample n: [16n, 120n, 0]; visual samples: [16, 120, 0] (see tiny-encoder.ts)
    expect(Array.from(set.modalities[0].data)).toEqual([0, 0, 0, 16, 120, 0, 32, 240, 0]);
    expect(Array.from(set.modalities[1].data)).toEqual([16, 120, 0, 16, 120, 0, 16, 120, 0]);
    expect(set.modalities[0].width).toBe(3);
  });

  test('a second run reuses the cache and --cache moves it', async () => {
    const cacheDir = path.join(scratch, 'elsewhere');
    const args = ['extract', '--dataset', datasetDir, '--models', modelsDir, '--cache', cacheDir];
    await runCli(...args, '--device', 'cpu');
    stdout = '';

    await runCli(...args, '--device', 'cpu', '--batch-size', '1');

    const report = JSON.parse(stdout);
    expect(report.modalities.map((entry: { cacheHit: boolean }) => entry.cacheHit)).toEqual([
      true,
      true,
    ]);
    expect(fs.readdirSync(cacheDir).sort()).toEqual([
      'audio-resnet18.json',
      'audio-resnet18.npy',
      'features.json',
      'visual-resnet18.json',
      'visual-resnet18.npy',
    ]);
  });

  test('EXPECTED FAILURE: a missing encoder names its path before any work', async () => {
    fs.rmSync(path.join(modelsDir, 'visual-resnet18.onnx'));

    const run = runCli('extract', '--dataset', datasetDir, '--models', modelsDir);

    await expect(run).rejects.toThrow(InputError);
    await expect(runCli('extract', '--dataset', datasetDir, '--models', modelsDir)).rejects.toThrow(
      `${path.join(modelsDir, 'visual-resnet18.onnx')}: no encoder for modality 'visual'`,
    );
    expect(fs.existsSync(path.join(datasetDir, 'features'))).toBe(false);
  });

  test('BAD CALL: --device gpu is refused by the option parser', async () => {
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);

    const run = runCli('extract', '--dataset', datasetDir, '--device', 'gpu');

    await expect(run).rejects.toThrow(/--device <name>' argument 'gpu' is invalid/);
    stderr.mockRestore();
  });
});
