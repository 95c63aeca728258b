import * as fs from 'fs';
import * as path from 'path';
import { InputError } from '../util/errors';
import { DecodedAudio, readWavFile } from './wav';

/**
 * Free Spoken Digit Dataset recordings in their own layout: one folder of files named
 * `{digit}_{speaker}_{index}.wav`. The split follows the dataset's convention (index 0..4 of
 * each digit and speaker is test) and adds index 5..9 as validation; the rest is train. Other
 * files in the folder (README, .DS_Store, ...) are ignored.
 */

export type FsddSplit = 'train' | 'val' | 'test';

export interface FsddRecording {
  /** File name, e.g. '7_jackson_32.wav'. */
  file: string;
  /** Full path. */
  path: string;
  digit: number;
  speaker: string;
  index: number;
  split: FsddSplit;
}

/** Options of `scanFsdd`. */
export interface ScanFsddOptions {
  /** The folder holding the .wav files. */
  dir: string;
}

const RECORDING_NAME = /^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$/i;

export const FSDD_PROTOCOL =
  "FSDD split by recording index within each digit and speaker: 0..4 test (the dataset's own " +
  'convention), 5..9 validation, 10 and above train. Speakers appear in every split.';

/** Which recording indices make each split, in words (as `fsddSplitOf` decides). */
export const FSDD_SPLIT_INDICES: Record<FsddSplit, string> = {
  test: '0..4',
  val: '5..9',
  train: '10 and above',
};

/** The split of a recording from its index. */
export function fsddSplitOf(index: number): FsddSplit {
  if (index <= 4) return 'test';
  if (index <= 9) return 'val';
  return 'train';
}

/**
 * Lists the recordings of a folder, sorted by digit, speaker and index. Throws InputError when
 * the folder is missing, is not a folder, or holds no recordings.
 */
export function scanFsdd(options: ScanFsddOptions): FsddRecording[] {
  const { dir } = options;
  if (!fs.existsSync(dir)) throw new InputError('FSDD folder not found', dir);
  if (!fs.statSync(dir).isDirectory())
    throw new InputError('expected an FSDD folder, found a file', dir);

  const recordings: FsddRecording[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const match = RECORDING_NAME.exec(entry.name);
    if (!match || !entry.isFile()) continue;

    const index = Number(match[3]);
    recordings.push({
      file: entry.name,
      path: path.join(dir, entry.name),
      digit: Number(match[1]),
      speaker: match[2],
      index,
      split: fsddSplitOf(index),
    });
  }

  if (recordings.length === 0) {
    throw new InputError('folder holds no recordings named {digit}_{speaker}_{index}.wav', dir);
  }

  return recordings.sort(
    (a, b) => a.digit - b.digit || a.speaker.localeCompare(b.speaker) || a.index - b.index,
  );
}

/** Decodes one recording; any failure is an InputError naming the file. */
export function readFsddRecording(recording: FsddRecording): DecodedAudio {
  try {
    return readWavFile(recording.path);
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`cannot read recording (${(error as Error).message})`, recording.path);
  }
}
