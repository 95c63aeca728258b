import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  compareMethods,
  comparisonTable,
  configForSpec,
  meanAndSpread,
} from '../orchestrator/train/compare';
import { ConfigError, ShapeError } from '../orchestrator/util/errors';
import { syntheticFeatureSet } from './helpers/synthetic-features';

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-compare-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

describe('compare', () => {
  it('computes mean and sample standard deviation by hand', () => {
    // values 1, 2, 4: mean 7/3; squared deviations 16/9, 1/9, 25/9 sum to 42/9; / 2 = 7/3
    const { mean, std } = meanAndSpread([1, 2, 4]);
    expect(mean).toBeCloseTo(7 / 3, 12);
    expect(std).toBeCloseTo(Math.sqrt(7 / 3), 12);
    expect(meanAndSpread([0.5])).toEqual({ mean: 0.5, std: 0 });
  });

  it('turns method specs into config fields and rejects unknown ones', () => {
    expect(configForSpec('unimodal:audio')).toEqual({ method: 'unimodal', modalities: ['audio'] });
    expect(configForSpec('concat')).toEqual({ method: 'concat' });
    expect(() => configForSpec('ogm')).toThrow(ConfigError);
  });

  it('runs methods x seeds and records runs relative to the comparison folder', async () => {
    const outDir = path.join(folder, 'cmp');
    const features = syntheticFeatureSet({ samples: 200 });

    const comparison = await compareMethods({
      features,
      outDir,
      methods: ['unimodal:weak', 'dyncim'],
      seeds: [0, 1],
      config: { epochs: 2, batchSize: 32, hiddenWidth: 8, backend: 'cpu' },
    });

    expect(comparison.rows.map((row) => row.method)).toEqual(['unimodal:weak', 'dyncim']);
    expect(comparison.rows[0].accuracy.values).toHaveLength(2);
    expect(comparison.runs.map((run) => run.runDir)).toEqual([
      'unimodal-weak-seed0',
      'unimodal-weak-seed1',
      'dyncim-seed0',
      'dyncim-seed1',
    ]);
    for (const run of comparison.runs) {
      expect(fs.existsSync(path.join(outDir, run.checkpoint))).toBe(true);
    }
    const table = fs.readFileSync(path.join(outDir, 'comparison.md'), 'utf8');
    expect(table).toBe(comparisonTable(comparison));
    expect(table.split('\n')[2]).toMatch(/^\| unimodal:weak \| \d+\.\d\d ± \d+\.\d\d \|/);
  });

  it('refuses a modality the features do not have before training anything', async () => {
    const outDir = path.join(folder, 'never');
    const attempt = compareMethods({
      features: syntheticFeatureSet({ samples: 100 }),
      outDir,
      methods: ['concat', 'unimodal:sound'],
      seeds: [0],
      config: { epochs: 1, backend: 'cpu' },
    });
    await expect(attempt).rejects.toThrow(ShapeError);
    expect(fs.existsSync(outDir)).toBe(false);
  });
});
