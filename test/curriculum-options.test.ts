import {
  DEFAULT_DYNCIM_OPTIONS,
  DynCimOptions,
  resolveDynCimOptions,
} from '../orchestrator/curriculum/curriculum-options';
import { ConfigError } from '../orchestrator/util/errors';

describe('resolveDynCimOptions', () => {
  it('returns the documented defaults', () => {
    const options = resolveDynCimOptions();

    expect(options).toEqual({
      sampleCurriculum: true,
      sampleMetrics: ['deviation', 'consistency', 'stability'],
      stabilityForm: 'mean-clamped',
      probabilityFloor: 1e-6,
      deviationSign: 1,
      consistencySign: 1,
      stabilitySign: 1,
      volatilityDecay: 0.995,
      modalityCurriculum: true,
      gmrForm: 'loss-unimodal-over-fused',
      gmrLogRatioLimit: 5,
      hmirEpsilon: 1e-6,
      lambdaBase: 0.5,
      gateSource: 'both',
      modalityWeighting: 'gate',
      gateThreshold: 0.5,
      gateRate: 1,
      renormaliseFusedWeights: false,
      strategy: 'dyncim',
      paceStartFraction: 0.5,
      paceRampEnd: 0.5,
      fullAdmissionMargin: 1.1,
    });
  });

  it('overrides only the given options and treats undefined as unset', () => {
    const options = resolveDynCimOptions({
      gmrForm: 'paper',
      deviationSign: -1,
      volatilityDecay: undefined,
    });

    expect(options.gmrForm).toBe('paper');
    expect(options.deviationSign).toBe(-1);
    expect(options.volatilityDecay).toBe(0.995);
  });

  it('copies the metric list so callers cannot change the defaults', () => {
    const options = resolveDynCimOptions();
    options.sampleMetrics.pop();

    expect(DEFAULT_DYNCIM_OPTIONS.sampleMetrics).toHaveLength(3);
    expect(resolveDynCimOptions().sampleMetrics).toHaveLength(3);
  });

  const badValues: [Partial<DynCimOptions>, RegExp][] = [
    [{ volatilityDecay: 1 }, /volatilityDecay must be a number in \[0, 1\), received 1/],
    [{ volatilityDecay: NaN }, /volatilityDecay .* received null/],
    [{ lambdaBase: 0.6 }, /lambdaBase must be a number in \[0, 0.5\], received 0.6/],
    [{ paceStartFraction: 0 }, /paceStartFraction must be a number in \(0, 1\]/],
    [{ fullAdmissionMargin: 1 }, /fullAdmissionMargin must be a number in \(1, 100\]/],
    [{ gateThreshold: -0.1 }, /gateThreshold must be a number in \[0, 1\]/],
    [{ hmirEpsilon: 0 }, /hmirEpsilon must be a number in \(0, 1\)/],
    [{ stabilityForm: 'sum' as never }, /stabilityForm must be one of 'mean-clamped', 'paper-/],
    [{ strategy: 'random' as never }, /strategy must be one of 'dyncim', 'none'/],
    [{ gateSource: 'neither' as never }, /gateSource must be one of/],
    [{ deviationSign: 2 }, /deviationSign must be 1 or -1, received 2/],
    [{ sampleCurriculum: 'yes' as never }, /sampleCurriculum must be true or false/],
    [{ sampleMetrics: [] }, /sampleMetrics must be a non-empty list/],
    [{ sampleMetrics: ['deviation', 'deviation'] }, /sampleMetrics .* distinct/],
    [{ sampleMetrics: 'deviation' as never }, /sampleMetrics .* received "deviation"/],
  ];

  it.each(badValues)('rejects %p', (partial, message) => {
    expect(() => resolveDynCimOptions(partial)).toThrow(ConfigError);
    expect(() => resolveDynCimOptions(partial)).toThrow(message);
  });

  it('rejects an unknown (misspelt) option and lists the known ones', () => {
    const misspelt = { volatilityDecy: 0.9 } as Partial<DynCimOptions>;

    expect(() => resolveDynCimOptions(misspelt)).toThrow(
      /unknown curriculum option volatilityDecy; known options: sampleCurriculum/,
    );
  });
});
