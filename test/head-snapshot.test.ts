import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FusionHead } from '../orchestrator/model/fusion-head';
import { loadSnapshot, saveSnapshot, snapshotToJson } from '../orchestrator/model/head-snapshot';
import { InputError } from '../orchestrator/util/errors';
import { initialiseBackend } from '../orchestrator/tf/backend';

let folder: string;
let snapshotJson: Record<string, unknown>;

beforeAll(async () => {
  await initialiseBackend('cpu');
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'head-snapshot-'));
  const head = FusionHead.create({
    kind: 'concat',
    modalities: [{ name: 'audio', featureWidth: 3 }],
    classNames: ['a', 'b'],
    hiddenWidth: 2,
  });
  head.inferenceModalityWeights[0] = 0.75;
  saveSnapshot(path.join(folder, 'good.json'), head.snapshot(), { epoch: 4 });
  snapshotJson = snapshotToJson(head.snapshot());
  head.dispose();
});

function writeHead(name: string, head: unknown): string {
  const file = path.join(folder, name);
  fs.writeFileSync(file, JSON.stringify({ head }));
  return file;
}

describe('head snapshots', () => {
  it('loads what it saved, weights and all', () => {
    const loaded = loadSnapshot(path.join(folder, 'good.json'));
    expect(loaded.inferenceModalityWeights[0]).toBe(0.75);
    expect(loaded.modalities[0].adapterWeight).toHaveLength(6);
    expect(loaded.classNames).toEqual(['a', 'b']);
  });

  it('names the file when it is missing or not JSON', () => {
    expect(() => loadSnapshot(path.join(folder, 'absent.json'))).toThrow(
      /absent.json: checkpoint not found/,
    );
    fs.writeFileSync(path.join(folder, 'broken.json'), '{"head": ');
    expect(() => loadSnapshot(path.join(folder, 'broken.json'))).toThrow(InputError);
  });

  it('rejects truncated weights, missing fields and NaN', () => {
    const modality = (snapshotJson.modalities as Array<Record<string, unknown>>)[0];
    const short = writeHead('short.json', {
      ...snapshotJson,
      modalities: [
        { ...modality, adapterBias: Buffer.from(new Float32Array(1).buffer).toString('base64') },
      ],
    });
    expect(() => loadSnapshot(short)).toThrow(/adapterBias' holds 1 values, expected 2/);

    const noClasses = writeHead('no-classes.json', { ...snapshotJson, classNames: undefined });
    expect(() => loadSnapshot(noClasses)).toThrow(/classNames/);

    const nan = writeHead('nan.json', { ...snapshotJson, inferenceModalityWeights: [null] });
    expect(() => loadSnapshot(nan)).toThrow(/NaN/);
  });
});

describe('snapshotFromJson field checks', () => {
  const modality = () => ({ ...(snapshotJson.modalities as Array<Record<string, unknown>>)[0] });
  const withModality = (changes: Record<string, unknown>) => ({
    ...snapshotJson,
    modalities: [{ ...modality(), ...changes }],
  });

  it.each<[string, () => unknown, RegExp]>([
    ['a head that is null', () => null, /the head is null, expected an object/],
    ['a head that is a list', () => [], /the head is a list, expected an object/],
    ['a wrong format', () => ({ ...snapshotJson, format: 'other/1' }), /format is "other\/1"/],
    [
      'an unknown kind',
      () => ({ ...snapshotJson, kind: 'banana' }),
      /field 'kind' is "banana", expected 'weighted-sum' or 'concat'/,
    ],
    [
      'duplicate class names',
      () => ({ ...snapshotJson, classNames: ['a', 'a'] }),
      /field 'classNames' names class 'a' twice/,
    ],
    [
      'a class name that is no string',
      () => ({ ...snapshotJson, classNames: ['a', 7] }),
      /field 'classNames\[1\]' is 7, expected a non-empty string/,
    ],
    [
      'an empty class name',
      () => ({ ...snapshotJson, classNames: ['a', ''] }),
      /field 'classNames\[1\]' is "", expected a non-empty string/,
    ],
    [
      'a single class',
      () => ({ ...snapshotJson, classNames: ['a'] }),
      /field 'classNames' names 1 class, expected at least 2/,
    ],
    [
      'a hidden width that is a string',
      () => ({ ...snapshotJson, hiddenWidth: '2' }),
      /field 'hiddenWidth' is "2", expected a positive integer/,
    ],
    [
      'a modality that is null',
      () => ({ ...snapshotJson, modalities: [null] }),
      /field 'modalities\[0\]' is null, expected an object/,
    ],
    [
      'a modality name that is a number',
      () => withModality({ name: 5 }),
      /field 'modalities\[0\]\.name' is 5, expected a plain name/,
    ],
    [
      'an empty modality name',
      () => withModality({ name: '' }),
      /field 'modalities\[0\]\.name' is "", expected a plain name/,
    ],
    [
      'duplicate modality names',
      () => ({
        ...snapshotJson,
        modalities: [modality(), modality()],
        inferenceModalityWeights: [1, 1],
      }),
      /field 'modalities' names modality 'audio' twice/,
    ],
    [
      'a non-numeric feature width',
      () => withModality({ featureWidth: 'abc' }),
      /field 'modalities\[0\]\.featureWidth' is "abc", expected a positive integer/,
    ],
    [
      'a fractional feature width',
      () => withModality({ featureWidth: 1.5 }),
      /field 'modalities\[0\]\.featureWidth' is 1.5, expected a positive integer/,
    ],
    [
      'an encoder sha256 that is a number',
      () => withModality({ encoderSha256: 12 }),
      /field 'modalities\[0\]\.encoderSha256' is 12, expected a string/,
    ],
    [
      'a weight field that is missing',
      () => withModality({ adapterWeight: undefined }),
      /field 'modalities\[0\]\.adapterWeight' is missing, expected base64 float32 data/,
    ],
    [
      'a weight field that is not base64',
      () => withModality({ adapterBias: '***!' }),
      /field 'modalities\[0\]\.adapterBias' is not base64 float32 data/,
    ],
    [
      'inference weights that are not a list',
      () => ({ ...snapshotJson, inferenceModalityWeights: 'x' }),
      /field 'inferenceModalityWeights' is "x", expected a list of numbers/,
    ],
  ])('refuses %s with an InputError naming the file and field', (name, makeHead, message) => {
    const file = writeHead(`${name.replace(/ /g, '-')}.json`, makeHead());
    let thrown: unknown;
    try {
      loadSnapshot(file);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InputError);
    expect((thrown as InputError).path).toBe(file);
    expect((thrown as Error).message.startsWith(`${file}: `)).toBe(true);
    expect((thrown as Error).message).toMatch(message);
  });

  it('refuses a checkpoint file holding null, a list or no head, naming the file', () => {
    for (const [name, text, message] of [
      ['null.json', 'null', /the file holds null, expected an object with a 'head' field/],
      ['list.json', '[]', /the file holds a list/],
      ['headless.json', '{"epoch": 3}', /no 'head' field/],
    ] as const) {
      const file = path.join(folder, name);
      fs.writeFileSync(file, text);
      expect(() => loadSnapshot(file)).toThrow(InputError);
      expect(() => loadSnapshot(file)).toThrow(message);
      expect(() => loadSnapshot(file)).toThrow(new RegExp(`^${file}: not a checkpoint`));
    }
  });

  it('refuses a folder given as the checkpoint', () => {
    expect(() => loadSnapshot(folder)).toThrow(new InputError('not a file', folder));
  });

  it('accepts an encoder sha256 that is absent or null, and keeps one that is given', () => {
    const absent = loadSnapshot(writeHead('sha-absent.json', withModality({})));
    expect(absent.modalities[0].encoderSha256).toBeUndefined();
    const nulled = loadSnapshot(writeHead('sha-null.json', withModality({ encoderSha256: null })));
    expect(nulled.modalities[0].encoderSha256).toBeUndefined();
    const given = loadSnapshot(writeHead('sha.json', withModality({ encoderSha256: 'ab' })));
    expect(given.modalities[0].encoderSha256).toBe('ab');
  });
});
