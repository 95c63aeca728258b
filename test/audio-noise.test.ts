import {
  addWhiteNoise,
  describeNoisySource,
  drawAudioNoise,
  parseNoisySource,
} from '../orchestrator/data/audio-noise';
import { ConfigError } from '../orchestrator/util/errors';

describe('audio noise', () => {
  const tone = Float32Array.from({ length: 8000 }, (_, n) => 0.5 * Math.sin(n / 3));

  it('adds noise at the requested SNR', () => {
    // signal power of a 0.5-amplitude sine is 0.125; at 10 dB the noise power is 0.0125
    const noisy = addWhiteNoise(tone, { snrDb: 10, noiseSeed: 7 });
    let noisePower = 0;
    for (let i = 0; i < tone.length; i++) noisePower += (noisy[i] - tone[i]) ** 2;
    noisePower /= tone.length;
    expect(noisePower).toBeGreaterThan(0.0125 * 0.9);
    expect(noisePower).toBeLessThan(0.0125 * 1.1);
  });

  it('is deterministic in its seed and clips to [-1, 1]', () => {
    const first = addWhiteNoise(tone, { snrDb: -10, noiseSeed: 3 });
    const second = addWhiteNoise(tone, { snrDb: -10, noiseSeed: 3 });
    const other = addWhiteNoise(tone, { snrDb: -10, noiseSeed: 4 });
    expect(Array.from(second)).toEqual(Array.from(first));
    expect(Array.from(other)).not.toEqual(Array.from(first));
    expect(Math.max(...first)).toBeLessThanOrEqual(1);
    expect(Math.min(...first)).toBeGreaterThanOrEqual(-1);
  });

  it('draws each sample its own SNR inside the range, fixed by seed and key', () => {
    const draws = Array.from({ length: 50 }, (_, k) => drawAudioNoise([-10, 5], 1, k));
    draws.forEach((noise) => {
      expect(noise.snrDb).toBeGreaterThanOrEqual(-10);
      expect(noise.snrDb).toBeLessThanOrEqual(5);
    });
    expect(new Set(draws.map((noise) => noise.snrDb)).size).toBeGreaterThan(40);
    expect(drawAudioNoise([-10, 5], 1, 'a.wav')).toEqual(drawAudioNoise([-10, 5], 1, 'a.wav'));
    expect(() => drawAudioNoise([5, -10], 1, 0)).toThrow(ConfigError);
  });

  it('round-trips the source description written to dataset.json', () => {
    const noise = { snrDb: -3.25, noiseSeed: 99 };
    const text = describeNoisySource('7_jackson_3.wav', noise);
    expect(text).toBe('fsdd:7_jackson_3.wav snrDb=-3.25 noiseSeed=99');
    expect(parseNoisySource(text)).toEqual({ file: '7_jackson_3.wav', noise });
    expect(parseNoisySource('fsdd:7_jackson_3.wav')).toEqual({ file: '7_jackson_3.wav' });
  });
});
