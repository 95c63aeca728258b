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
