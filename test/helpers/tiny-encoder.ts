import * as fs from 'fs';
import * as protobuf from 'protobufjs';

/**
 * Writes tiny ONNX models for the encoder tests, so they need neither torch nor a 45 MB
 * ResNet. The schema below is the small part of onnx.proto these models use (field numbers
 * from the ONNX specification); protobufjs encodes it.
 *
 * The default model is an encoder: input `input` float32 [batch, 1, 4, 4] -> Flatten ->
 * MatMul with `TINY_WEIGHTS` [16, 3] -> output `features` float32 [batch, 3], so
 * features[n][j] = sum over k of input[n][k] * TINY_WEIGHTS[k][j].
 */

const ONNX_SUBSET = `
syntax = "proto2";
package tiny;
message AttributeProto {
  optional string name = 1;
  optional int64 i = 3;
  optional int32 type = 20;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  optional string name = 8;
}
message Dimension {
  optional int64 dim_value = 1;
  optional string dim_param = 2;
}
message TensorShapeProto { repeated Dimension dim = 1; }
message TensorTypeProto {
  optional int32 elem_type = 1;
  optional TensorShapeProto shape = 2;
}
message TypeProto { optional TensorTypeProto tensor_type = 1; }
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}
`;

const FLOAT = 1;
const ATTRIBUTE_INT = 2;
const IR_VERSION = 8;
const OPSET = 13;

const modelType = protobuf
  .parse(ONNX_SUBSET, { keepCase: true })
  .root.lookupType('tiny.ModelProto');

/** Column 0 sums the pixels, column 1 weighs pixel k by k, column 2 alternates +1 / -1. */
export const TINY_WEIGHTS: number[][] = Array.from({ length: 16 }, (_, k) => [
  1,
  k,
  k % 2 === 0 ? 1 : -1,
]);

export interface TinyModelOptions {
  /** Default 'input'. */
  inputName?: string;
  /** Sizes after the batch axis. Default [1, 4, 4]. */
  sampleShape?: number[];
  /** Default 'features'. */
  outputName?: string;
  /** [sample size, width]. Default TINY_WEIGHTS. */
  weights?: number[][];
  /** Also output `logits` = -features, as real encoders have a second output. */
  withLogits?: boolean;
}

function valueInfo(name: string, dims: (number | string)[]) {
  const dim = dims.map((size) =>
    typeof size === 'string' ? { dim_param: size } : { dim_value: size },
  );
  return { name, type: { tensor_type: { elem_type: FLOAT, shape: { dim } } } };
}

/** The encoded ModelProto bytes of a tiny Flatten -> MatMul model. */
export function tinyModelBytes(options: TinyModelOptions = {}): Uint8Array {
  const inputName = options.inputName ?? 'input';
  const sampleShape = options.sampleShape ?? [1, 4, 4];
  const outputName = options.outputName ?? 'features';
  const weights = options.weights ?? TINY_WEIGHTS;
  const width = weights[0].length;

  const nodes = [
    {
      name: 'flatten',
      op_type: 'Flatten',
      input: [inputName],
      output: ['flat'],
      attribute: [{ name: 'axis', i: 1, type: ATTRIBUTE_INT }],
    },
    { name: 'project', op_type: 'MatMul', input: ['flat', 'weights'], output: [outputName] },
  ];
  const outputs = [valueInfo(outputName, ['batch', width])];
  if (options.withLogits) {
    nodes.push({ name: 'negate', op_type: 'Neg', input: [outputName], output: ['logits'] });
    outputs.push(valueInfo('logits', ['batch', width]));
  }

  const model = {
    ir_version: IR_VERSION,
    producer_name: 'dyncim-tests',
    opset_import: [{ domain: '', version: OPSET }],
    graph: {
      name: 'tiny-encoder',
      node: nodes,
      initializer: [
        {
          name: 'weights',
          dims: [weights.length, width],
          data_type: FLOAT,
          float_data: weights.flat(),
        },
      ],
      input: [valueInfo(inputName, ['batch', ...sampleShape])],
      output: outputs,
    },
  };
  return modelType.encode(modelType.fromObject(model)).finish();
}

/** Writes a tiny model to `file` and returns the path. */
export function writeTinyModel(file: string, options: TinyModelOptions = {}): string {
  fs.writeFileSync(file, tinyModelBytes(options));
  return file;
}
