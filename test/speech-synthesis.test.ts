import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  augmentClip,
  checkEspeakVoices,
  describeUtterance,
  parseUtterance,
  DIGIT_WORDS,
  partitionSpeakers,
  planUtterances,
  synthesizeUtterances,
  Utterance,
} from '../orchestrator/data/speech-synthesis';
import { DecodedAudio } from '../orchestrator/data/wav';
import { ConfigError, DependencyError, InputError } from '../orchestrator/util/errors';

const hasEspeak = !spawnSync('espeak-ng', ['--version']).error;
const withEspeak = hasEspeak ? it : it.skip;

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-speech-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

function utterance(overrides: Partial<Utterance> = {}): Utterance {
  return {
    digit: 7,
    word: 'seven',
    speakerId: 'en-us+m3/s160/p50',
    voice: 'en-us',
    variant: 'm3',
    speed: 160,
    pitch: 50,
    snrDb: 20,
    gain: 1,
    leadSeconds: 0,
    noiseSeed: 1,
    ...overrides,
  };
}

describe('partitionSpeakers', () => {
  it('cuts 120 speakers into disjoint sets of 48 / 36 / 18 / 18', () => {
    const partition = partitionSpeakers();
    const ids = Object.values(partition).flatMap((set) => set.map((speaker) => speaker.id));

    expect(partition.pretrain.length).toBe(48);
    expect(partition.train.length).toBe(36);
    expect(partition.val.length).toBe(18);
    expect(partition.test.length).toBe(18);
    expect(new Set(ids).size).toBe(120);
    // the voice+variant pair alone already tells speakers apart
    expect(new Set(ids.map((id) => id.split('/')[0])).size).toBe(120);
  });

  it('is fixed by speakerSeed and changes with it', () => {
    const first = partitionSpeakers({ speakerSeed: 4 });

    expect(partitionSpeakers({ speakerSeed: 4 })).toEqual(first);
    expect(partitionSpeakers({ speakerSeed: 5 }).test).not.toEqual(first.test);
  });

  it('keeps rate and pitch inside the documented ranges', () => {
    const speakers = Object.values(partitionSpeakers({ speakerCount: 240 })).flat();

    speakers.forEach((speaker) => {
      expect(speaker.speed).toBeGreaterThanOrEqual(130);
      expect(speaker.speed).toBeLessThanOrEqual(210);
      expect(speaker.pitch).toBeGreaterThanOrEqual(25);
      expect(speaker.pitch).toBeLessThanOrEqual(75);
    });
  });

  it('rejects impossible sizes', () => {
    expect(() => partitionSpeakers({ speakerCount: 241 })).toThrow(/in \[4, 240\], received 241/);
    expect(() => partitionSpeakers({ speakerCount: 5, valFraction: 0.01 })).toThrow(ConfigError);
    expect(() => partitionSpeakers({ pretrainFraction: 0.6, trainFraction: 0.5 })).toThrow(
      /must be at most 1/,
    );
  });
});

describe('planUtterances', () => {
  const speakers = partitionSpeakers().train;

  it('plans clipsPerClass clips per digit with the right word, deterministically', () => {
    const plan = planUtterances({ speakers, clipsPerClass: 3, seed: 2 });

    expect(plan.length).toBe(30);
    plan.forEach((item, i) => {
      expect(item.digit).toBe(Math.floor(i / 3));
      expect(item.word).toBe(DIGIT_WORDS[item.digit]);
    });
    expect(planUtterances({ speakers, clipsPerClass: 3, seed: 2 })).toEqual(plan);
    expect(planUtterances({ speakers, clipsPerClass: 3, seed: 3 })).not.toEqual(plan);
  });

  it('uses the given speakers in turn, with jitter and augmentation in range', () => {
    const plan = planUtterances({ speakers, clipsPerClass: 72, seed: 0, snrDbRange: [10, 12] });
    const byId = new Map(speakers.map((speaker) => [speaker.id, speaker]));

    const perSpeaker = new Map<string, number>();
    plan.forEach((item) => {
      const speaker = byId.get(item.speakerId)!;
      expect(speaker).toBeDefined();
      expect(Math.abs(item.speed - speaker.speed)).toBeLessThanOrEqual(
        Math.ceil(0.08 * speaker.speed),
      );
      expect(Math.abs(item.pitch - speaker.pitch)).toBeLessThanOrEqual(6);
      expect(item.snrDb).toBeGreaterThanOrEqual(10);
      expect(item.snrDb).toBeLessThan(12);
      expect(item.gain).toBeGreaterThanOrEqual(0.25);
      expect(item.leadSeconds).toBeLessThan(0.25);
      perSpeaker.set(item.speakerId, (perSpeaker.get(item.speakerId) ?? 0) + 1);
    });
    // 720 clips over 36 speakers in turn: 20 each
    expect([...perSpeaker.values()].every((count) => count === 20)).toBe(true);
  });
});

describe('describeUtterance and parseUtterance', () => {
  it('round-trip an utterance exactly, full-precision numbers included', () => {
    const original = utterance({
      snrDb: 12.345678901234,
      gain: 0.3333333333333333,
      leadSeconds: 0.1,
    });

    const line = describeUtterance(original);

    expect(line).toBe(
      'espeak-ng:en-us+m3 speed=160 pitch=50 word=seven snrDb=12.345678901234 ' +
        'gain=0.3333333333333333 leadSeconds=0.1 noiseSeed=1',
    );
    expect(parseUtterance(line, original.speakerId)).toEqual(original);
  });

  it('rejects a line that is not a description', () => {
    expect(() => parseUtterance('fsdd:7_jackson_32.wav')).toThrow(InputError);
    expect(() => parseUtterance('espeak-ng:en-us+m3 speed=fast word=seven')).toThrow(
      /not an espeak-ng utterance description/,
    );
  });
});

describe('augmentClip', () => {
  const rate = 8000;
  const raw: DecodedAudio = {
    samples: Float32Array.from({ length: 4000 }, (_, n) => 0.5 * Math.sin(n / 5)),
    sampleRate: rate,
    channels: 1,
  };

  it('prepends the lead, adds noise at the planned SNR and applies the gain', () => {
    // raw power 0.125; at 10 dB the noise power is 0.0125; the gain 0.5 scales it by 0.25
    const clip = augmentClip(raw, utterance({ snrDb: 10, gain: 0.5, leadSeconds: 0.5 }));

    expect(clip.samples.length).toBe(4000 + 4000);
    let leadPower = 0;
    for (let i = 0; i < 4000; i++) leadPower += clip.samples[i] ** 2;
    leadPower /= 4000;
    expect(leadPower).toBeGreaterThan(0.0125 * 0.25 * 0.9);
    expect(leadPower).toBeLessThan(0.0125 * 0.25 * 1.1);
    expect(clip.samples[4000 + 8]).toBeCloseTo(0.5 * 0.5 * Math.sin(8 / 5), 1);
  });

  it('is repeatable from the noise seed', () => {
    const first = augmentClip(raw, utterance({ noiseSeed: 77 }));
    const second = augmentClip(raw, utterance({ noiseSeed: 77 }));
    const other = augmentClip(raw, utterance({ noiseSeed: 78 }));

    expect(Array.from(second.samples)).toEqual(Array.from(first.samples));
    expect(Array.from(other.samples)).not.toEqual(Array.from(first.samples));
  });
});

describe('synthesizeUtterances', () => {
  withEspeak('synthesizes with espeak-ng once, then reads the cache', async () => {
    const cacheDir = path.join(folder, 'cache');
    const utterances = [utterance(), utterance({ digit: 3, word: 'three', noiseSeed: 2 })];
    const clips: DecodedAudio[] = [];

    const first = await synthesizeUtterances({
      utterances,
      cacheDir,
      onClip: (index, clip) => (clips[index] = clip),
    });
    const second = await synthesizeUtterances({ utterances, cacheDir, onClip: () => undefined });

    expect(first.cacheHits).toBe(0);
    expect(second.cacheHits).toBe(2);
    expect(fs.readdirSync(cacheDir).filter((name) => name.endsWith('.wav')).length).toBe(2);
    expect(clips[0].sampleRate).toBe(22050);
    // espeak-ng says 'seven' in roughly half a second to a second
    expect(clips[0].samples.length / 22050).toBeGreaterThan(0.4);
    expect(clips[0].samples.length / 22050).toBeLessThan(1.5);
  });

  it('says how to install espeak-ng when it is missing', async () => {
    const attempt = synthesizeUtterances({
      utterances: [utterance()],
      cacheDir: path.join(folder, 'unused'),
      onClip: () => undefined,
      espeakCommand: 'espeak-ng-not-installed-here',
    });

    await expect(attempt).rejects.toThrow(DependencyError);
    await expect(attempt).rejects.toThrow(/install the Debian package espeak-ng/);
  });

  withEspeak(
    'names unknown voices and variants instead of letting espeak-ng fall back',
    async () => {
      const cacheDir = path.join(folder, 'bad-voice');
      const attempt = synthesizeUtterances({
        utterances: [utterance({ voice: 'no-such-voice' }), utterance({ variant: 'zz9' })],
        cacheDir,
        onClip: () => undefined,
      });

      await expect(attempt).rejects.toThrow(ConfigError);
      await expect(attempt).rejects.toThrow(/lacks voices \[no-such-voice\] and variants \[zz9\]/);
      expect(fs.existsSync(cacheDir)).toBe(false);
    },
  );

  withEspeak('knows every voice and variant of the built-in speaker list', () => {
    const everyone = Object.values(partitionSpeakers({ speakerCount: 240 })).flat();
    const plan = planUtterances({ speakers: everyone, clipsPerClass: 240, seed: 0 });

    expect(new Set(plan.map((item) => item.speakerId)).size).toBe(240);

    expect(() => checkEspeakVoices(plan)).not.toThrow();
  });
});
