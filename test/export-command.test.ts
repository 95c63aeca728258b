import * as fs from 'fs';
import * as path from 'path';
import { runExportCommand } from '../orchestrator/cli/commands/export';
import * as verifyModule from '../orchestrator/export/verify-export';
import { HeadSnapshot } from '../orchestrator/model/fusion-head';
import { saveSnapshot, snapshotToJson } from '../orchestrator/model/head-snapshot';
import { initialiseBackend } from '../orchestrator/tf/backend';
import { ConfigError, InputError } from '../orchestrator/util/errors';
import { makeTemporaryFolder, randomHead, removeFolder } from './helpers/export-fixtures';

/**
 * `dyncim export` on bad checkpoints and output paths: one InputError naming the file at fault,
 * and a previous export at --out left byte for byte as it was.
 */

let scratch: string;
let good: HeadSnapshot;
let other: HeadSnapshot;

beforeAll(async () => {
  await initialiseBackend('cpu');
  scratch = makeTemporaryFolder('export-command');
  for (const [seed, assign] of [
    [11, (s: HeadSnapshot) => (good = s)],
    [12, (s: HeadSnapshot) => (other = s)],
  ] as const) {
    const head = randomHead('concat', seed);
    assign(head.snapshot());
    head.dispose();
  }
});

afterAll(() => removeFolder(scratch));

/** Every weight and bias of a snapshot multiplied by `factor` (in float32). */
function scaled(snapshot: HeadSnapshot, factor: number): HeadSnapshot {
  const times = (values: Float32Array) => values.map((value) => value * factor);
  return {
    ...snapshot,
    modalities: snapshot.modalities.map((modality) => ({
      ...modality,
      adapterWeight: times(modality.adapterWeight),
      adapterBias: times(modality.adapterBias),
      classifierWeight: times(modality.classifierWeight),
      classifierBias: times(modality.classifierBias),
      fusionWeight: times(modality.fusionWeight),
    })),
    fusionBias: times(snapshot.fusionBias),
  };
}

/** A folder holding a good export at head.onnx, made from `good`; returns its paths. */
async function withPreviousExport(name: string): Promise<{ out: string; before: Buffer }> {
  const folder = path.join(scratch, name);
  const checkpoint = path.join(folder, 'good.json');
  saveSnapshot(checkpoint, good, { epoch: 1 });
  const out = path.join(folder, 'head.onnx');
  await runExportCommand({ checkpoint, out });
  return { out, before: fs.readFileSync(out) };
}

function temporaryFiles(out: string): string[] {
  return fs.readdirSync(path.dirname(out)).filter((name) => name.includes('.tmp-'));
}

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

describe('dyncim export keeps a previous good export when it fails', () => {
  it('reports weights that overflow float32 logits, naming the checkpoint', async () => {
    const { out, before } = await withPreviousExport('overflow');
    const checkpoint = path.join(path.dirname(out), 'x3e37.json');
    saveSnapshot(checkpoint, scaled(good, 3e37));

    const error = await failureOf(runExportCommand({ checkpoint, out }));

    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).path).toBe(checkpoint);
    expect(error.message).toMatch(/weights up to [\d.]+e37 overflow float32 logits/);
    expect(fs.readFileSync(out).equals(before)).toBe(true);
    expect(temporaryFiles(out)).toEqual([]);
  });

  it('reports logits too large to verify in float32, naming the checkpoint', async () => {
    const { out, before } = await withPreviousExport('huge');
    const checkpoint = path.join(path.dirname(out), 'x1e15.json');
    saveSnapshot(checkpoint, scaled(good, 1e15));

    const error = await failureOf(runExportCommand({ checkpoint, out }));

    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).path).toBe(checkpoint);
    expect(error.message).toMatch(
      /weights up to [\d.]+e15 give float32 logits up to [\d.]+e\d+, too large to check/,
    );
    expect(fs.readFileSync(out).equals(before)).toBe(true);
    expect(temporaryFiles(out)).toEqual([]);
  });

  it('keeps the previous export when the exporter itself disagrees with tf.js', async () => {
    const { out, before } = await withPreviousExport('bug');
    const checkpoint = path.join(path.dirname(out), 'other.json');
    saveSnapshot(checkpoint, other);
    const spy = jest.spyOn(verifyModule, 'verifyExport').mockResolvedValue({
      rows: 16,
      maxAbsDifference: 0.5,
      argmaxDisagreements: 3,
      maxAbsLogit: 4,
      nonFiniteLogits: 0,
    });

    try {
      const error = await failureOf(runExportCommand({ checkpoint, out }));
      expect(error).not.toBeInstanceOf(InputError);
      expect(error.message).toMatch(/nothing was written\. This is a bug in dyncim's exporter/);
    } finally {
      spy.mockRestore();
    }
    expect(fs.readFileSync(out).equals(before)).toBe(true);
    expect(temporaryFiles(out)).toEqual([]);
  });

  it.each<[string, (head: Record<string, unknown>) => unknown, RegExp]>([
    ['an unknown kind', (head) => ({ ...head, kind: 'banana' }), /field 'kind' is "banana"/],
    [
      'duplicate modality names',
      (head) => {
        const modalities = head.modalities as Array<Record<string, unknown>>;
        return { ...head, modalities: [modalities[0], { ...modalities[1], name: 'audio' }] };
      },
      /field 'modalities' names modality 'audio' twice/,
    ],
    [
      'duplicate class names',
      (head) => ({ ...head, classNames: ['zero', 'one', 'zero', 'three'] }),
      /field 'classNames' names class 'zero' twice/,
    ],
    ['a null head', () => null, /the head is null/],
  ])(
    'refuses a checkpoint with %s as an InputError, never an ONNX ConfigError',
    async (_, edit, message) => {
      const { out, before } = await withPreviousExport('malformed');
      const checkpoint = path.join(path.dirname(out), 'malformed.json');
      fs.writeFileSync(checkpoint, JSON.stringify({ head: edit(snapshotToJson(other)) }));

      const error = await failureOf(runExportCommand({ checkpoint, out }));

      expect(error).toBeInstanceOf(InputError);
      expect(error).not.toBeInstanceOf(ConfigError);
      expect(error.message.startsWith(`${checkpoint}: `)).toBe(true);
      expect(error.message).toMatch(message);
      expect(fs.readFileSync(out).equals(before)).toBe(true);
    },
  );

  it('refuses a checkpoint file that holds null', async () => {
    const checkpoint = path.join(scratch, 'null.json');
    fs.writeFileSync(checkpoint, 'null');
    const out = path.join(scratch, 'null', 'head.onnx');

    await expect(runExportCommand({ checkpoint, out })).rejects.toThrow(
      new InputError(
        "not a checkpoint: the file holds null, expected an object with a 'head' field",
        checkpoint,
      ),
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses --out naming a folder with an InputError naming it', async () => {
    const { out } = await withPreviousExport('folder');
    const checkpoint = path.join(path.dirname(out), 'good.json');
    const folder = path.join(path.dirname(out), 'a-folder');
    fs.mkdirSync(folder);

    const error = await failureOf(runExportCommand({ checkpoint, out: folder }));

    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).path).toBe(folder);
    expect(error.message).toMatch(/is a folder/);
    expect(fs.readdirSync(folder)).toEqual([]);
  });

  it('replaces the previous export once the new one is verified', async () => {
    const { out, before } = await withPreviousExport('replace');
    const checkpoint = path.join(path.dirname(out), 'other.json');
    saveSnapshot(checkpoint, other);

    const result = await runExportCommand({ checkpoint, out });

    expect(result.verification?.argmaxDisagreements).toBe(0);
    expect(result.verification?.nonFiniteLogits).toBe(0);
    const after = fs.readFileSync(out);
    expect(after.equals(before)).toBe(false);
    expect(after.length).toBe(result.byteLength);
    expect(temporaryFiles(out)).toEqual([]);
  });
});
