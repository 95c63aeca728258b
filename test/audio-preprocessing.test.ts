import * as fs from 'fs';
import {
  AUDIO_PREPROCESSING,
  centreToLength,
  fftInPlace,
  hzToMel,
  melFilterbank,
  melToHz,
  preprocessAudio,
  resample,
  trimSilence,
} from '../orchestrator/data/audio-preprocessing';
import { readWavFile } from '../orchestrator/data/wav';
import { InputError, ShapeError } from '../orchestrator/util/errors';

function tone(hz: number, sampleRate: number, count: number, amplitude = 1): Float32Array {
  return Float32Array.from(
    { length: count },
    (_, n) => amplitude * Math.sin((2 * Math.PI * hz * n) / sampleRate),
  );
}

/** Amplitude of the `hz` component over samples [from, to), by projection on sin and cos. */
function amplitudeAt(
  samples: Float32Array,
  hz: number,
  sampleRate: number,
  from: number,
  to: number,
) {
  let sine = 0;
  let cosine = 0;
  for (let n = from; n < to; n++) {
    sine += samples[n] * Math.sin((2 * Math.PI * hz * n) / sampleRate);
    cosine += samples[n] * Math.cos((2 * Math.PI * hz * n) / sampleRate);
  }
  return (2 / (to - from)) * Math.hypot(sine, cosine);
}

function rms(samples: Float32Array, from: number, to: number): number {
  let sum = 0;
  for (let n = from; n < to; n++) sum += samples[n] * samples[n];
  return Math.sqrt(sum / (to - from));
}

describe('fftInPlace', () => {
  it('turns an impulse into a flat spectrum and a constant into a DC spike', () => {
    const impulseRe = new Float64Array([1, 0, 0, 0, 0, 0, 0, 0]);
    const impulseIm = new Float64Array(8);
    const constantRe = new Float64Array(8).fill(1);
    const constantIm = new Float64Array(8);

    fftInPlace(impulseRe, impulseIm);
    fftInPlace(constantRe, constantIm);

    expect(Array.from(impulseRe)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(impulseIm).every((value) => Math.abs(value) < 1e-12)).toBe(true);
    expect(constantRe[0]).toBe(8);
    expect(constantRe.subarray(1).every((value) => Math.abs(value) < 1e-12)).toBe(true);
  });

  it('puts a cosine at bin 3 of 16 into bins 3 and 13 with height N/2', () => {
    const real = Float64Array.from({ length: 16 }, (_, n) => Math.cos((2 * Math.PI * 3 * n) / 16));
    const imag = new Float64Array(16);

    fftInPlace(real, imag);

    const magnitudes = Array.from(real, (re, k) => Math.hypot(re, imag[k]));
    magnitudes.forEach((magnitude, k) => {
      expect(magnitude).toBeCloseTo(k === 3 || k === 13 ? 8 : 0, 10);
    });
  });

  it('matches a direct DFT on an arbitrary signal', () => {
    const size = 64;
    const signal = Float64Array.from({ length: size }, (_, n) => Math.sin(n * n * 0.37) + n / 64);
    const real = signal.slice();
    const imag = new Float64Array(size);

    fftInPlace(real, imag);

    for (let k = 0; k < size; k++) {
      let expectedRe = 0;
      let expectedIm = 0;
      for (let n = 0; n < size; n++) {
        expectedRe += signal[n] * Math.cos((-2 * Math.PI * k * n) / size);
        expectedIm += signal[n] * Math.sin((-2 * Math.PI * k * n) / size);
      }
      expect(real[k]).toBeCloseTo(expectedRe, 9);
      expect(imag[k]).toBeCloseTo(expectedIm, 9);
    }
  });

  it('rejects lengths that are not a power of two', () => {
    expect(() => fftInPlace(new Float64Array(12), new Float64Array(12))).toThrow(ShapeError);
  });
});

describe('mel scale and filterbank', () => {
  it('uses the HTK formula: 700 Hz is 2595 log10(2) mel', () => {
    expect(hzToMel(700)).toBeCloseTo(781.1728, 3);
    expect(melToHz(hzToMel(1234.5))).toBeCloseTo(1234.5, 9);
  });

  it('builds the triangle worked out by hand (one band, 0..700..2100 Hz)', () => {
    // edges at mel 0, mel(700), 2 mel(700) = mel(2100); bins every 5600 / 16 = 350 Hz
    const filters = melFilterbank({
      bands: 1,
      nFft: 16,
      sampleRate: 5600,
      fMinHz: 0,
      fMaxHz: 2100,
    });

    const expected = [0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0, 0];
    expect(filters.length).toBe(9);
    filters.forEach((weight, bin) => expect(weight).toBeCloseTo(expected[bin], 6));
  });

  it('has 64 non-empty bands whose weights sum to 1 between the outer centres', () => {
    const filters = melFilterbank();
    const bins = AUDIO_PREPROCESSING.nFft / 2 + 1;
    const melStep = hzToMel(4000) / 65;
    const firstCentreHz = melToHz(melStep);
    const lastCentreHz = melToHz(64 * melStep);

    expect(filters.length).toBe(64 * bins);
    for (let band = 0; band < 64; band++) {
      const row = filters.subarray(band * bins, (band + 1) * bins);
      expect(Math.max(...row)).toBeGreaterThan(0);
      expect(Math.max(...row)).toBeLessThanOrEqual(1);
    }
    for (let bin = 0; bin < bins; bin++) {
      const hz = (bin * 8000) / 256;
      if (hz < firstCentreHz || hz > lastCentreHz) continue;
      let sum = 0;
      for (let band = 0; band < 64; band++) sum += filters[band * bins + bin];
      expect(sum).toBeCloseTo(1, 5);
    }
  });
});

describe('resample', () => {
  it('keeps a 1 kHz tone at 1 kHz and full amplitude from 22050 Hz to 8 kHz', () => {
    const output = resample(tone(1000, 22050, 22050), 22050, 8000);

    expect(output.length).toBe(8000);
    expect(amplitudeAt(output, 1000, 8000, 400, 7600)).toBeCloseTo(1, 2);
    expect(amplitudeAt(output, 1100, 8000, 400, 7600)).toBeLessThan(0.01);
  });

  it('removes a 6 kHz tone instead of aliasing it to 2 kHz', () => {
    const output = resample(tone(6000, 22050, 22050), 22050, 8000);

    expect(rms(output, 400, 7600)).toBeLessThan(0.002);
    expect(amplitudeAt(output, 2000, 8000, 400, 7600)).toBeLessThan(0.002);
  });

  it('passes 3 kHz, inside the new band, at full amplitude', () => {
    const output = resample(tone(3000, 22050, 22050), 22050, 8000);

    expect(amplitudeAt(output, 3000, 8000, 400, 7600)).toBeCloseTo(1, 2);
  });

  it('upsamples 8 kHz to 16 kHz keeping the tone', () => {
    const output = resample(tone(1000, 8000, 8000), 8000, 16000);

    expect(output.length).toBe(16000);
    expect(amplitudeAt(output, 1000, 16000, 800, 15200)).toBeCloseTo(1, 2);
  });
});

describe('trimSilence and centreToLength', () => {
  it('cuts silence around a tone down to the tone, block-aligned', () => {
    const burst = tone(500, 8000, 800, 0.5);
    const clip = new Float32Array(8000 + 800 + 4000);
    clip.set(burst, 8000);

    const trimmed = trimSilence(clip);

    expect(trimmed.length).toBe(800);
    expect(Array.from(trimmed)).toEqual(Array.from(burst));
  });

  it('keeps blocks within 30 dB of the loudest and cuts quieter ones', () => {
    const clip = new Float32Array(800);
    clip.fill(0.001, 0, 80); // -60 dB: cut
    clip.fill(0.05, 80, 160); // -26 dB: kept
    clip.fill(1, 160, 240);

    expect(trimSilence(clip).length).toBe(160);
  });

  it('centre-pads and centre-crops', () => {
    expect(Array.from(centreToLength(new Float32Array([1, 2, 3]), 7))).toEqual([
      0, 0, 1, 2, 3, 0, 0,
    ]);
    const long = Float32Array.from({ length: 10 }, (_, i) => i + 1);
    expect(Array.from(centreToLength(long, 4))).toEqual([4, 5, 6, 7]);
  });
});

describe('preprocessAudio', () => {
  it('returns a finite, standardised [1, 64, 64] log-mel spectrogram', () => {
    const output = preprocessAudio(tone(440, 8000, 6000, 0.3), 8000);

    expect(output.length).toBe(64 * 64);
    expect(output.every(Number.isFinite)).toBe(true);
    const mean = output.reduce((sum, value) => sum + value, 0) / output.length;
    const variance = output.reduce((sum, value) => sum + (value - mean) ** 2, 0) / output.length;
    expect(mean).toBeCloseTo(0, 5);
    expect(variance).toBeCloseTo(1, 4);
  });

  it.each([
    ['8 kHz', 8000],
    ['22.05 kHz', 22050],
  ])('puts a 1 kHz tone (%s) into band 29, the band centred nearest 1 kHz', (_, sampleRate) => {
    // mel(1000 Hz) = 1000; bands are 2146.06 / 65 = 33.02 mel apart, band b centred at
    // (b + 1) x 33.02 mel: band 29 at 990.5 mel (988 Hz), band 30 at 1023.5 mel
    const output = preprocessAudio(tone(1000, sampleRate, sampleRate / 2, 0.5), sampleRate);

    const bandTotals = Array.from({ length: 64 }, (_, band) =>
      output.subarray(band * 64, band * 64 + 64).reduce((sum, value) => sum + value, 0),
    );
    expect(bandTotals.indexOf(Math.max(...bandTotals))).toBe(29);
  });

  it('ignores loudness and leading silence', () => {
    const word = Float32Array.from(
      tone(300, 8000, 3000),
      (value, n) => value * (1 + Math.sin(n / 90)),
    );
    const quietAndLate = new Float32Array(5000);
    quietAndLate.set(
      word.map((value) => value * 0.05),
      2000,
    );

    const reference = preprocessAudio(word, 8000);
    const shifted = preprocessAudio(quietAndLate, 8000);

    let largestDifference = 0;
    reference.forEach((value, i) => {
      largestDifference = Math.max(largestDifference, Math.abs(value - shifted[i]));
    });
    expect(largestDifference).toBeLessThan(1e-3);
  });

  it('returns zeros for an all-silent clip instead of dividing by zero', () => {
    expect(preprocessAudio(new Float32Array(4000), 8000).every((value) => value === 0)).toBe(true);
  });

  it('rejects NaN, infinity, empty clips and bad rates with the clip named', () => {
    const withNaN = new Float32Array(100);
    withNaN[42] = NaN;
    const withInfinity = new Float32Array(100);
    withInfinity[7] = Infinity;

    expect(() => preprocessAudio(withNaN, 8000, { source: 'a.wav' })).toThrow(
      /a\.wav: audio sample 42 is NaN/,
    );
    expect(() => preprocessAudio(withInfinity, 8000)).toThrow(/sample 7 is Infinity/);
    expect(() => preprocessAudio(new Float32Array(0), 8000)).toThrow(InputError);
    expect(() => preprocessAudio(new Float32Array(10), 0)).toThrow(/sample rate/);
  });

  it.each([4294967295, 1, 384001])('rejects a sample rate of %d Hz, naming the clip', (rate) => {
    const started = Date.now();

    expect(() =>
      preprocessAudio(new Float32Array(8000).fill(0.1), rate, { source: 'a.wav' }),
    ).toThrow(
      new RegExp(`^a\\.wav: sample rate ${rate} Hz is outside the supported 1000 to 384000 Hz`),
    );
    expect(() => preprocessAudio(new Float32Array(10), rate)).toThrow(InputError);
    // refused before any resampling (1 Hz used to take seconds per clip)
    expect(Date.now() - started).toBeLessThan(500);
  });

  const fsddFile = '/work/shared/data/fsdd/recordings/3_theo_12.wav';
  (fs.existsSync(fsddFile) ? it : it.skip)('handles a real recording', () => {
    const decoded = readWavFile(fsddFile);

    const output = preprocessAudio(decoded.samples, decoded.sampleRate, { source: fsddFile });

    expect(output.length).toBe(4096);
    expect(output.every(Number.isFinite)).toBe(true);
  });
});
