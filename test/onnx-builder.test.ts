import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder } from '../orchestrator/export/onnx-builder';
import { decodeModel, onnxType, toNumber } from '../orchestrator/export/onnx-proto';
import { ConfigError } from '../orchestrator/util/errors';

/** y = relu(x W + b) and its softmax, with W and b chosen so the outputs are easy by hand. */
function tinyGraph(): OnnxGraphBuilder {
  const builder = new OnnxGraphBuilder({ graphName: 'tiny' });
  builder.addInput({ name: 'x', dims: ['batch', 2] });
  // W = [[1, -1], [2, 0.5]], b = [0.5, -1]
  builder.addInitializer({ name: 'W', dims: [2, 2], values: Float32Array.of(1, -1, 2, 0.5) });
  builder.addInitializer({ name: 'b', dims: [2], values: Float32Array.of(0.5, -1) });

  builder.addNode({ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['xW'] });
  builder.addNode({ opType: 'Add', inputs: ['xW', 'b'], outputs: ['pre'] });
  builder.addNode({ opType: 'Relu', inputs: ['pre'], outputs: ['y'] });
  builder.addNode({
    opType: 'Softmax',
    inputs: ['y'],
    outputs: ['p'],
    attributes: { axis: { int: -1 } },
  });

  builder.addOutput({ name: 'y', dims: ['batch', 2] });
  builder.addOutput({ name: 'p', dims: ['batch', 2] });
  builder.setMetadata('purpose', 'test');
  return builder;
}

async function runModel(
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
): Promise<ort.InferenceSession.ReturnType> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

describe('OnnxGraphBuilder', () => {
  it('builds y = relu(x W + b) that ONNX Runtime computes as worked out by hand', async () => {
    // x = [[1, 2], [-3, 1]]
    // row 1: xW = [1 + 4, -1 + 1] = [5, 0];    + b = [5.5, -1];  relu = [5.5, 0]
    // row 2: xW = [-3 + 2, 3 + 0.5] = [-1, 3.5]; + b = [-0.5, 2.5]; relu = [0, 2.5]
    const x = new ort.Tensor('float32', Float32Array.of(1, 2, -3, 1), [2, 2]);
    const results = await runModel(tinyGraph().encode(), { x });

    expect(results.y.dims).toEqual([2, 2]);
    expect(Array.from(results.y.data as Float32Array)).toEqual([5.5, 0, 0, 2.5]);

    // softmax([5.5, 0]) = [1, e^-5.5] / (1 + e^-5.5)
    // softmax([0, 2.5]) = [e^-2.5, 1] / (1 + e^-2.5)
    const p = results.p.data as Float32Array;
    const first = 1 / (1 + Math.exp(-5.5));
    const second = 1 / (1 + Math.exp(-2.5));
    expect(p[0]).toBeCloseTo(first, 6);
    expect(p[1]).toBeCloseTo(1 - first, 6);
    expect(p[2]).toBeCloseTo(1 - second, 6);
    expect(p[3]).toBeCloseTo(second, 6);
  });

  it('keeps the batch dimension dynamic', async () => {
    // one row x = [0, 1]: xW = [2, 0.5]; + b = [2.5, -0.5]; relu = [2.5, 0]
    const x = new ort.Tensor('float32', Float32Array.of(0, 1), [1, 2]);
    const results = await runModel(tinyGraph().encode(), { x });
    expect(Array.from(results.y.data as Float32Array)).toEqual([2.5, 0]);
  });

  it('computes Sum of several inputs and Mul by a scalar initializer', async () => {
    const builder = new OnnxGraphBuilder();
    builder.addInput({ name: 'a', dims: ['batch', 2] });
    builder.addInput({ name: 'c', dims: ['batch', 2] });
    builder.addInitializer({ name: 'half', dims: [], values: Float32Array.of(0.5) });
    builder.addInitializer({ name: 'shift', dims: [2], values: Float32Array.of(10, 20) });
    builder.addNode({ opType: 'Mul', inputs: ['a', 'half'], outputs: ['halfA'] });
    builder.addNode({ opType: 'Sum', inputs: ['halfA', 'c', 'shift'], outputs: ['total'] });
    builder.addOutput({ name: 'total', dims: ['batch', 2] });

    // 0.5 * [4, -2] + [1, 1] + [10, 20] = [13, 20]
    const results = await runModel(builder.encode(), {
      a: new ort.Tensor('float32', Float32Array.of(4, -2), [1, 2]),
      c: new ort.Tensor('float32', Float32Array.of(1, 1), [1, 2]),
    });
    expect(Array.from(results.total.data as Float32Array)).toEqual([13, 20]);
  });

  it('writes the ONNX field numbers: ir_version is field 1, a varint (tag byte 0x08)', () => {
    const bytes = tinyGraph().encode();
    expect(bytes[0]).toBe(0x08);
    expect(bytes[1]).toBe(7);
  });

  it('records producer, opset, metadata, symbolic dims and little-endian raw data', () => {
    const model = decodeModel(tinyGraph().encode());
    expect(model.producerName).toBe('dyncim');
    expect(model.irVersion).toBe(7);
    expect(model.opsetImports).toEqual([{ domain: '', version: 13 }]);
    expect(model.metadata).toEqual({ purpose: 'test' });

    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const graph = model.graph as any;
    const inputDims = graph.input[0].type.tensor_type.shape.dim;
    expect(inputDims[0].dim_param).toBe('batch');
    expect(toNumber(inputDims[1].dim_value)).toBe(2);

    const weight = graph.initializer.find((tensor: { name: string }) => tensor.name === 'W');
    expect(weight.dims.map(toNumber)).toEqual([2, 2]);
    const raw: Uint8Array = weight.raw_data;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const values = [0, 1, 2, 3].map((i) => view.getFloat32(i * 4, true));
    expect(values).toEqual([1, -1, 2, 0.5]);

    const softmax = graph.node.find((node: { op_type: string }) => node.op_type === 'Softmax');
    expect(softmax.attribute[0].name).toBe('axis');
    expect(toNumber(softmax.attribute[0].i)).toBe(-1);
  });

  it('encodes what a hand-made ModelProto object encodes', () => {
    // the opset import alone: field 8 (tag 0x42), length 2, version field 2 (tag 0x10) = 13
    const modelType = onnxType('ModelProto');
    const bytes = modelType
      .encode(modelType.fromObject({ opset_import: [{ version: 13 }] }))
      .finish();
    expect(Array.from(bytes)).toEqual([0x42, 0x02, 0x10, 13]);
  });

  it('rejects a value name defined twice', () => {
    const builder = new OnnxGraphBuilder();
    builder.addInput({ name: 'x', dims: ['batch', 2] });
    expect(() =>
      builder.addInitializer({ name: 'x', dims: [1], values: Float32Array.of(1) }),
    ).toThrow(/value name 'x' is defined twice: by a graph input and an initializer/);
  });

  it('rejects a node that reads an undefined value', () => {
    const builder = new OnnxGraphBuilder();
    builder.addInput({ name: 'x', dims: ['batch', 2] });
    expect(() =>
      builder.addNode({ opType: 'Add', inputs: ['x', 'missing'], outputs: ['y'], name: 'add' }),
    ).toThrow(/node 'add' \(Add\) reads 'missing'/);
  });

  it('rejects initializer values that do not fill their dims', () => {
    const builder = new OnnxGraphBuilder();
    expect(() =>
      builder.addInitializer({ name: 'W', dims: [2, 3], values: new Float32Array(5) }),
    ).toThrow(/'W' holds 5 values; dims \[2,3\] need 6/);
  });

  it('rejects bad input dims and undefined graph outputs', () => {
    const builder = new OnnxGraphBuilder();
    expect(() => builder.addInput({ name: 'x', dims: ['batch', 0] })).toThrow(ConfigError);
    builder.addOutput({ name: 'nowhere', dims: ['batch', 2] });
    expect(() => builder.encode()).toThrow(/graph output 'nowhere' is not defined/);
  });

  it('rejects duplicate node names', () => {
    const builder = new OnnxGraphBuilder();
    builder.addInput({ name: 'x', dims: [1] });
    builder.addNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'], name: 'n' });
    expect(() =>
      builder.addNode({ opType: 'Relu', inputs: ['y'], outputs: ['z'], name: 'n' }),
    ).toThrow(/node name 'n' is used twice/);
  });
});
