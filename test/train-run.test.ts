import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveTrainConfig, trainOnFeatures } from '../orchestrator/train/train-run';
import { ConfigError } from '../orchestrator/util/errors';
import { syntheticFeatureSet } from './helpers/synthetic-features';

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-train-run-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

const quick = { epochs: 2, batchSize: 32, hiddenWidth: 8, backend: 'cpu' as const };

function readJson(file: string) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

describe('trainOnFeatures', () => {
  it('writes the run folder the README describes', async () => {
    const runDir = path.join(folder, 'run');
    const features = syntheticFeatureSet({ samples: 200 });

    const { summary } = await trainOnFeatures({ features, runDir, config: quick });

    expect(fs.readdirSync(runDir).sort()).toEqual([
      'checkpoints',
      'config.json',
      'metrics.jsonl',
      'split.json',
      'summary.json',
    ]);
    expect(fs.readdirSync(path.join(runDir, 'checkpoints')).sort()).toEqual([
      'best.json',
      'last.json',
    ]);
    const lines = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    const last = JSON.parse(lines[1]);
    expect(lines).toHaveLength(2);
    expect(Object.keys(last.curriculum)).toEqual(
      expect.arrayContaining(['psi', 'gate', 'omegaStar', 'eta', 'admittedFraction']),
    );
    expect(readJson(path.join(runDir, 'config.json')).method).toBe('dyncim');
    expect(readJson(path.join(runDir, 'split.json')).test).toHaveLength(40);
    expect(summary.checkpoint).toBe(path.join(runDir, 'checkpoints', 'best.json'));
  });

  it('leaves an earlier run untouched when a run fails part way', async () => {
    const runDir = path.join(folder, 'kept');
    const features = syntheticFeatureSet({ samples: 200 });
    await trainOnFeatures({ features, runDir, config: { ...quick, method: 'concat' } });
    const before = fs.readFileSync(path.join(runDir, 'checkpoints', 'best.json'));

    // a NaN feature passes no loader here, so the curriculum meets it during training
    const broken = syntheticFeatureSet({ samples: 200 });
    broken.modalities[0].data[3] = Number.NaN;
    await expect(trainOnFeatures({ features: broken, runDir, config: quick })).rejects.toThrow(
      /training diverged: a loss of the gate-free pass is not finite/,
    );

    expect(fs.readFileSync(path.join(runDir, 'checkpoints', 'best.json'))).toEqual(before);
    expect(readJson(path.join(runDir, 'config.json')).method).toBe('concat');
    expect(fs.readdirSync(folder).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('stops a diverging run with advice, keeping the earlier one', async () => {
    const runDir = path.join(folder, 'diverging');
    const features = syntheticFeatureSet({ samples: 200 });
    await trainOnFeatures({ features, runDir, config: { ...quick, method: 'concat' } });
    const before = fs.readFileSync(path.join(runDir, 'checkpoints', 'best.json'));

    const attempt = trainOnFeatures({
      features,
      runDir,
      config: { ...quick, method: 'concat', learningRate: 1e30 },
    });
    await expect(attempt).rejects.toThrow(
      /training diverged: .*Lower the learning rate \(now 1e\+30\)/,
    );
    expect(fs.readFileSync(path.join(runDir, 'checkpoints', 'best.json'))).toEqual(before);
  });

  it('refuses to replace a folder that is not an earlier run', async () => {
    const runDir = path.join(folder, 'my-data');
    fs.mkdirSync(runDir);
    fs.writeFileSync(path.join(runDir, 'keep.txt'), 'mine');
    const features = syntheticFeatureSet({ samples: 100 });

    await expect(trainOnFeatures({ features, runDir, config: quick })).rejects.toThrow(
      /my-data: exists and is not an earlier output \(it has no config\.json\)/,
    );
    expect(fs.readdirSync(runDir)).toEqual(['keep.txt']);
  });

  it('refuses an empty split before writing anything', async () => {
    const features = syntheticFeatureSet({ samples: 50 });
    features.splits = features.splits.map((split) => (split === 'val' ? 'train' : split));
    const runDir = path.join(folder, 'never');

    await expect(trainOnFeatures({ features, runDir, config: quick })).rejects.toThrow(
      /the val split holds no samples/,
    );
    expect(fs.existsSync(runDir)).toBe(false);
  });
});

describe('resolveTrainConfig', () => {
  it('fills defaults', () => {
    const config = resolveTrainConfig({ method: 'concat' });
    expect(config).toMatchObject({ method: 'concat', epochs: 60, batchSize: 64, seed: 0 });
  });

  it.each([
    [{ epoch: 3 }, /unknown training option\(s\) epoch/],
    [{ learningRate: Infinity }, /learningRate must be a finite number > 0/],
    [{ learningRate: -1 }, /learningRate/],
    [{ weightDecay: -0.1 }, /weightDecay/],
    [{ epochs: 0 }, /epochs must be a positive integer/],
    [{ modalities: [] }, /modalities must be a non-empty list/],
    [{ modalities: 'audio' }, /modalities must be a non-empty list/],
    [{ method: 'unimodal', modalities: ['a', 'b'] }, /exactly one modality/],
    [{ method: 'foo' }, /method must be/],
    [null, /must be a JSON object/],
  ])('rejects %j', (partial, message) => {
    expect(() => resolveTrainConfig(partial as never)).toThrow(ConfigError);
    expect(() => resolveTrainConfig(partial as never)).toThrow(message);
  });
});
