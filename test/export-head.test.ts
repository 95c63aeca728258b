import * as fs from 'fs';
import * as path from 'path';
import { runExportCommand } from '../orchestrator/cli/commands/export';
import {
  buildHeadModel,
  exportHead,
  exportHeadChecked,
  headSchemaFor,
} from '../orchestrator/export/export-head';
import { parseHeadSchema } from '../orchestrator/export/head-schema';
import { decodeModel, toNumber } from '../orchestrator/export/onnx-proto';
import { HeadSnapshot } from '../orchestrator/model/fusion-head';
import { saveSnapshot } from '../orchestrator/model/head-snapshot';
import { initialiseBackend } from '../orchestrator/tf/backend';
import { ConfigError, InputError, ShapeError } from '../orchestrator/util/errors';
import {
  AUDIO_WIDTH,
  CLASS_NAMES,
  HIDDEN_WIDTH,
  IMAGE_WIDTH,
  makeTemporaryFolder,
  randomHead,
  removeFolder,
} from './helpers/export-fixtures';

let scratch: string;
let weightedSum: HeadSnapshot;
let concat: HeadSnapshot;

beforeAll(async () => {
  await initialiseBackend('cpu');
  scratch = makeTemporaryFolder('export-head');

  for (const kind of ['weighted-sum', 'concat'] as const) {
    const head = randomHead(kind);
    if (kind === 'weighted-sum') weightedSum = head.snapshot();
    else concat = head.snapshot();
    head.dispose();
  }
});

afterAll(() => removeFolder(scratch));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Graph = any;

function initializerNames(graph: Graph): string[] {
  return graph.initializer.map((tensor: { name: string }) => tensor.name);
}

function floatsOf(graph: Graph, name: string): number[] {
  const tensor = graph.initializer.find((entry: { name: string }) => entry.name === name);
  const raw: Uint8Array = tensor.raw_data;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

function dimsOf(value: Graph): Array<number | string> {
  return value.type.tensor_type.shape.dim.map((dim: Graph) =>
    dim.dim_param ? dim.dim_param : toNumber(dim.dim_value),
  );
}

describe('exportHead', () => {
  it('writes inputs per modality and fused, probability and unimodal outputs', () => {
    const outputPath = path.join(scratch, 'nested', 'head.onnx');
    const result = exportHead({ snapshot: concat, outputPath });

    expect(fs.statSync(outputPath).size).toBe(result.byteLength);
    const graph = decodeModel(fs.readFileSync(outputPath)).graph as Graph;

    const inputs = graph.input.map((value: Graph) => [value.name, dimsOf(value)]);
    expect(inputs).toEqual([
      ['features_audio', ['batch', AUDIO_WIDTH]],
      ['features_image', ['batch', IMAGE_WIDTH]],
    ]);
    const outputs = graph.output.map((value: Graph) => [value.name, dimsOf(value)]);
    expect(outputs).toEqual([
      ['logits', ['batch', 4]],
      ['probabilities', ['batch', 4]],
      ['logits_audio', ['batch', 4]],
      ['logits_image', ['batch', 4]],
    ]);
  });

  it('stores the snapshot weights unchanged, row-major', () => {
    const graph = decodeModel(buildHeadModel({ snapshot: concat })).graph as Graph;
    const audio = concat.modalities[0];
    const image = concat.modalities[1];

    expect(floatsOf(graph, 'modality/audio/adapter/weight')).toEqual(
      Array.from(audio.adapterWeight),
    );
    expect(floatsOf(graph, 'modality/image/classifier/bias')).toEqual(
      Array.from(image.classifierBias),
    );
    const imageFusion = floatsOf(graph, 'modality/image/fusion/weight');
    expect(imageFusion).toEqual(Array.from(image.fusionWeight));
    expect(floatsOf(graph, 'fusion/bias')).toEqual(Array.from(concat.fusionBias));
    // the fixed inference weights 0.35 and 1.65, as float32
    expect(floatsOf(graph, 'modality/audio/fusion/modality_weight')).toEqual([Math.fround(0.35)]);
    expect(floatsOf(graph, 'modality/image/fusion/modality_weight')).toEqual([Math.fround(1.65)]);
  });

  it('stores the shared fusion weight of a weighted-sum head once', () => {
    const graph = decodeModel(buildHeadModel({ snapshot: weightedSum })).graph as Graph;
    const names = initializerNames(graph);

    expect(names.filter((name) => name.endsWith('fusion/weight'))).toEqual(['fusion/weight']);
    expect(floatsOf(graph, 'fusion/weight')).toEqual(
      Array.from(weightedSum.modalities[0].fusionWeight),
    );
    const fusionMatMuls = graph.node.filter(
      (node: Graph) => node.op_type === 'MatMul' && node.input[1] === 'fusion/weight',
    );
    expect(fusionMatMuls).toHaveLength(2);
  });

  it('records the dyncim schema and caller metadata', () => {
    const bytes = buildHeadModel({
      snapshot: weightedSum,
      metadata: { 'dyncim.run_id': 'run-7', 'dyncim.config': { epochs: 3 }, skipped: undefined },
    });
    const model = decodeModel(bytes);

    expect(model.producerName).toBe('dyncim');
    expect(model.opsetImports).toEqual([{ domain: '', version: 13 }]);
    expect(model.metadata['dyncim.run_id']).toBe('run-7');
    expect(JSON.parse(model.metadata['dyncim.config'])).toEqual({ epochs: 3 });
    expect('skipped' in model.metadata).toBe(false);

    const schema = parseHeadSchema(model.metadata['dyncim.schema'], 'head.onnx');
    expect(schema).toEqual({
      format: 'dyncim-head-onnx/1',
      modalities: [
        {
          name: 'audio',
          input: 'features_audio',
          unimodalOutput: 'logits_audio',
          featureWidth: AUDIO_WIDTH,
          encoderSha256: 'a'.repeat(64),
        },
        {
          name: 'image',
          input: 'features_image',
          unimodalOutput: 'logits_image',
          featureWidth: IMAGE_WIDTH,
          encoderSha256: null,
        },
      ],
      classNames: CLASS_NAMES,
      hiddenWidth: HIDDEN_WIDTH,
      kind: 'weighted-sum',
      inferenceModalityWeights: [Math.fround(0.35), Math.fround(1.65)],
    });
    expect(schema).toEqual(headSchemaFor(weightedSum));
  });

  it('refuses to let caller metadata replace the schema', () => {
    expect(() =>
      buildHeadModel({ snapshot: concat, metadata: { 'dyncim.schema': 'mine' } }),
    ).toThrow(ConfigError);
  });

  it('rejects a snapshot whose arrays do not fit its widths, writing nothing', () => {
    const broken: HeadSnapshot = {
      ...concat,
      modalities: [
        { ...concat.modalities[0], adapterBias: new Float32Array(5) },
        concat.modalities[1],
      ],
    };
    const outputPath = path.join(scratch, 'broken.onnx');

    expect(() => exportHead({ snapshot: broken, outputPath })).toThrow(
      new ShapeError(
        "snapshot field 'modalities['audio'].adapterBias' " + 'holds 5 values, expected 6',
      ),
    );
    expect(fs.existsSync(outputPath)).toBe(false);
  });

  it('rejects NaN weights and leaves an existing export in place', () => {
    const outputPath = path.join(scratch, 'kept.onnx');
    exportHead({ snapshot: concat, outputPath });
    const before = fs.readFileSync(outputPath);

    const fusionBias = concat.fusionBias.slice();
    fusionBias[2] = NaN;
    expect(() => exportHead({ snapshot: { ...concat, fusionBias }, outputPath })).toThrow(
      /snapshot field 'fusionBias' holds NaN at index 2/,
    );
    expect(fs.readFileSync(outputPath).equals(before)).toBe(true);
  });

  it('rejects a weighted-sum snapshot whose modalities disagree on the shared weight', () => {
    const fusionWeight = weightedSum.modalities[1].fusionWeight.slice();
    fusionWeight[3] += 1;
    const image = { ...weightedSum.modalities[1], fusionWeight };
    const snapshot = { ...weightedSum, modalities: [weightedSum.modalities[0], image] };

    expect(() => buildHeadModel({ snapshot })).toThrow(
      /modalities 'audio' and 'image' hold different fusionWeight values/,
    );
  });

  it('rejects inference weights that do not match the modality count', () => {
    const snapshot = { ...concat, inferenceModalityWeights: Float32Array.of(1) };
    expect(() => buildHeadModel({ snapshot })).toThrow(
      /'inferenceModalityWeights' holds 1 values, expected 2/,
    );
  });
});

describe('exportHead refuses bad snapshots and output paths before writing', () => {
  /** Files in `folder` whose names mark them as temporary siblings of an export. */
  const temporaryFiles = (folder: string) =>
    fs.readdirSync(folder).filter((name) => name.includes('.tmp-'));

  /** Exports `concat` to a fresh file and returns its path and bytes. */
  function previousExport(name: string): { outputPath: string; before: Buffer } {
    const outputPath = path.join(scratch, 'refusals', name);
    exportHead({ snapshot: concat, outputPath });
    return { outputPath, before: fs.readFileSync(outputPath) };
  }

  it.each<[string, () => HeadSnapshot, RegExp]>([
    [
      'an unknown kind',
      () => ({ ...concat, kind: 'banana' as HeadSnapshot['kind'] }),
      /snapshot kind is "banana", expected 'weighted-sum' or 'concat'/,
    ],
    [
      'duplicate modality names',
      () => ({ ...concat, modalities: [concat.modalities[0], { ...concat.modalities[0] }] }),
      /snapshot names modality 'audio' twice/,
    ],
    [
      'duplicate class names',
      () => ({ ...concat, classNames: ['zero', 'one', 'one', 'three'] }),
      /snapshot classNames names class 'one' twice/,
    ],
    [
      'a non-numeric feature width',
      () => ({
        ...concat,
        modalities: [
          { ...concat.modalities[0], featureWidth: 'abc' as unknown as number },
          concat.modalities[1],
        ],
      }),
      /snapshot modalities\[0\]\.featureWidth is "abc", expected a positive integer/,
    ],
    [
      'an encoder sha256 that the reader would refuse',
      () => ({
        ...concat,
        modalities: [
          { ...concat.modalities[0], encoderSha256: 5 as unknown as string },
          concat.modalities[1],
        ],
      }),
      /snapshot modalities\[0\]\.encoderSha256 is 5, expected a string/,
    ],
  ])(
    'refuses %s with an InputError naming the source, keeping the old file',
    (_, make, message) => {
      const { outputPath, before } = previousExport('kept-on-refusal.onnx');
      const source = path.join(scratch, 'checkpoints', 'source.json');

      let thrown: unknown;
      try {
        exportHead({ snapshot: make(), outputPath, source });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InputError);
      expect((thrown as InputError).path).toBe(source);
      expect((thrown as Error).message).toMatch(message);
      expect(fs.readFileSync(outputPath).equals(before)).toBe(true);
      expect(temporaryFiles(path.dirname(outputPath))).toEqual([]);
    },
  );

  it('names the source in shape errors too', () => {
    const broken = { ...concat, fusionBias: new Float32Array(3) };
    expect(() =>
      exportHead({ snapshot: broken, outputPath: 'unused.onnx', source: 'c.json' }),
    ).toThrow(new ShapeError("c.json: snapshot field 'fusionBias' holds 3 values, expected 4"));
  });

  it('refuses an output path that is a folder, naming it, and leaves the folder alone', () => {
    const folder = path.join(scratch, 'refusals', 'a-folder');
    fs.mkdirSync(path.join(folder, 'inside'), { recursive: true });

    expect(() => exportHead({ snapshot: concat, outputPath: folder })).toThrow(
      new InputError('is a folder; give the path of the .onnx file to write', folder),
    );
    expect(fs.readdirSync(folder)).toEqual(['inside']);
    expect(temporaryFiles(path.dirname(folder))).toEqual([]);
  });

  it('refuses an output path below a file, naming it', () => {
    const file = path.join(scratch, 'refusals', 'plain-file');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'x');
    const outputPath = path.join(file, 'head.onnx');

    expect(() => exportHead({ snapshot: concat, outputPath })).toThrow(InputError);
    expect(() => exportHead({ snapshot: concat, outputPath })).toThrow(
      new RegExp(`^${outputPath}: cannot write the ONNX head \\(ENOTDIR`),
    );
  });
});

describe('exportHeadChecked', () => {
  const folder = () => path.join(scratch, 'checked');
  const temporaryFiles = () => fs.readdirSync(folder()).filter((name) => name.includes('.tmp-'));

  it('runs the check on a temporary sibling, then moves it into place', async () => {
    const outputPath = path.join(folder(), 'head.onnx');
    fs.mkdirSync(folder(), { recursive: true });
    fs.writeFileSync(outputPath, 'old');
    let seen = '';

    const { result, checked } = await exportHeadChecked(
      { snapshot: concat, outputPath },
      async (temporaryPath) => {
        seen = temporaryPath;
        expect(path.dirname(temporaryPath)).toBe(folder());
        expect(fs.readFileSync(outputPath, 'utf8')).toBe('old');
        return fs.statSync(temporaryPath).size;
      },
    );

    expect(seen).not.toBe(outputPath);
    expect(checked).toBe(result.byteLength);
    expect(fs.readFileSync(outputPath)).toEqual(Buffer.from(buildHeadModel({ snapshot: concat })));
    expect(temporaryFiles()).toEqual([]);
  });

  it('on a failed check, keeps the old file byte for byte and drops the temporary', async () => {
    const outputPath = path.join(folder(), 'kept.onnx');
    exportHead({ snapshot: weightedSum, outputPath });
    const before = fs.readFileSync(outputPath);

    const failing = exportHeadChecked({ snapshot: concat, outputPath }, async (temporaryPath) => {
      expect(fs.existsSync(temporaryPath)).toBe(true);
      throw new InputError('the check failed', 'checkpoint.json');
    });

    await expect(failing).rejects.toThrow('checkpoint.json: the check failed');
    expect(fs.readFileSync(outputPath).equals(before)).toBe(true);
    expect(temporaryFiles()).toEqual([]);
  });
});

describe('parseHeadSchema', () => {
  it('names the file and the problem', () => {
    expect(() => parseHeadSchema('{', 'x.onnx')).toThrow(InputError);
    expect(() => parseHeadSchema('{', 'x.onnx')).toThrow(/^x\.onnx: metadata 'dyncim.schema'/);

    const schema = JSON.parse(JSON.stringify(headSchemaFor(concat)));
    schema.modalities[1].featureWidth = 0;
    expect(() => parseHeadSchema(JSON.stringify(schema), 'x.onnx')).toThrow(
      "x.onnx: metadata 'dyncim.schema': modalities[1].featureWidth is 0, " +
        'expected a positive integer',
    );
  });
});

describe('dyncim export (runExportCommand)', () => {
  it('exports a checkpoint, records its provenance and verifies it against tf.js', async () => {
    const checkpoint = path.join(scratch, 'checkpoints', 'best.json');
    saveSnapshot(checkpoint, concat, { epoch: 4, method: 'dyncim' });
    const out = path.join(scratch, 'run', 'head.onnx');

    const result = await runExportCommand({ checkpoint, out, meta: ['dyncim.run_id=r1'] });

    expect(result.verification?.rows).toBe(16);
    expect(result.verification?.maxAbsDifference).toBeLessThan(1e-5);
    expect(result.verification?.argmaxDisagreements).toBe(0);

    const metadata = decodeModel(fs.readFileSync(out)).metadata;
    expect(metadata['dyncim.run_id']).toBe('r1');
    const provenance = JSON.parse(metadata['dyncim.checkpoint']);
    expect(provenance).toMatchObject({ file: 'best.json', epoch: 4, method: 'dyncim' });
    expect(provenance.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects a malformed --meta entry before writing anything', async () => {
    const checkpoint = path.join(scratch, 'checkpoints', 'meta.json');
    saveSnapshot(checkpoint, concat);
    const out = path.join(scratch, 'meta', 'head.onnx');

    await expect(runExportCommand({ checkpoint, out, meta: ['novalue'] })).rejects.toThrow(
      "--meta: expected 'key=value', received 'novalue'",
    );
    expect(fs.existsSync(out)).toBe(false);
  });
});
