import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fsddSplitOf, readFsddRecording, scanFsdd } from '../orchestrator/data/fsdd-source';
import { encodeWav16 } from '../orchestrator/data/wav';
import { InputError } from '../orchestrator/util/errors';

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-fsdd-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

function makeFolder(name: string, files: string[]): string {
  const dir = path.join(folder, name);
  fs.mkdirSync(dir);
  const wav = encodeWav16({ samples: [0.1, -0.1], sampleRate: 8000 });
  for (const file of files) fs.writeFileSync(path.join(dir, file), wav);
  return dir;
}

describe('fsddSplitOf', () => {
  it('puts 0..4 in test, 5..9 in val, the rest in train', () => {
    expect([0, 4, 5, 9, 10, 49].map(fsddSplitOf)).toEqual([
      'test',
      'test',
      'val',
      'val',
      'train',
      'train',
    ]);
  });
});

describe('scanFsdd', () => {
  it('parses names, ignores other files and sorts by digit, speaker, index', () => {
    const dir = makeFolder('mixed', [
      '7_jackson_32.wav',
      '0_theo_10.wav',
      '0_george_3.wav',
      '0_george_12.wav',
      'README.md',
      '7_jackson_32.wav.bak',
      'x_jackson_1.wav',
    ]);
    fs.mkdirSync(path.join(dir, '1_dir_2.wav'));

    const recordings = scanFsdd({ dir });

    expect(recordings.map((recording) => recording.file)).toEqual([
      '0_george_3.wav',
      '0_george_12.wav',
      '0_theo_10.wav',
      '7_jackson_32.wav',
    ]);
    expect(recordings[3]).toEqual({
      file: '7_jackson_32.wav',
      path: path.join(dir, '7_jackson_32.wav'),
      digit: 7,
      speaker: 'jackson',
      index: 32,
      split: 'train',
    });
    expect(recordings[0].split).toBe('test');
  });

  it('names a missing folder, a file given as folder, and a folder without recordings', () => {
    const empty = makeFolder('empty', ['notes.txt']);

    expect(() => scanFsdd({ dir: path.join(folder, 'absent') })).toThrow(
      /absent: FSDD folder not found/,
    );
    expect(() => scanFsdd({ dir: path.join(empty, 'notes.txt') })).toThrow(/found a file/);
    expect(() => scanFsdd({ dir: empty })).toThrow(/empty: folder holds no recordings/);
  });

  const real = '/work/shared/data/fsdd/recordings';
  (fs.existsSync(real) ? it : it.skip)('splits the real subset 250 / 250 / 2000', () => {
    const recordings = scanFsdd({ dir: real });
    const count = (split: string) => recordings.filter((item) => item.split === split).length;

    expect(recordings.length).toBe(2500);
    expect([count('test'), count('val'), count('train')]).toEqual([250, 250, 2000]);
    expect(new Set(recordings.map((item) => item.speaker)).size).toBe(5);
  });
});

describe('readFsddRecording', () => {
  it('decodes a recording and names one that is corrupt', () => {
    const dir = makeFolder('corrupt', ['1_amy_0.wav']);
    fs.writeFileSync(path.join(dir, '2_amy_0.wav'), 'not audio at all');
    const [good, bad] = scanFsdd({ dir });

    expect(readFsddRecording(good).samples.length).toBe(2);
    expect(() => readFsddRecording(bad)).toThrow(InputError);
    expect(() => readFsddRecording(bad)).toThrow(/2_amy_0\.wav: not a RIFF file/);
  });
});
