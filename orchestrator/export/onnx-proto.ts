import * as protobuf from 'protobufjs';

/**
 * The part of the ONNX protobuf schema (onnx.proto, proto2) that the head export writes and
 * reads, declared in code with protobufjs's reflection API so that no .proto file has to be
 * found at run time. Field numbers follow the ONNX specification; fields this toolkit never
 * writes (training info, functions, sparse tensors, sequence and map types) are left out, and
 * protobuf decoding skips them when a model from elsewhere holds them.
 *
 * Decoded 64-bit integers (dims, dim_value, ir_version, ...) may come back as Long objects;
 * `toNumber` turns them into plain numbers.
 */

/** TensorProto.DataType values this toolkit uses. */
export const TensorDataType = {
  FLOAT: 1,
  INT32: 6,
  INT64: 7,
} as const;

/** AttributeProto.AttributeType values. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

/** [field name, field number, protobuf type, 'repeated' when a list]. */
type FieldSpec = [name: string, id: number, type: string, rule?: 'repeated'];

const OPERATOR_SET_ID: FieldSpec[] = [
  ['domain', 1, 'string'],
  ['version', 2, 'int64'],
];

const STRING_STRING_ENTRY: FieldSpec[] = [
  ['key', 1, 'string'],
  ['value', 2, 'string'],
];

const TENSOR: FieldSpec[] = [
  ['dims', 1, 'int64', 'repeated'],
  ['data_type', 2, 'int32'],
  ['float_data', 4, 'float', 'repeated'],
  ['int32_data', 5, 'int32', 'repeated'],
  ['string_data', 6, 'bytes', 'repeated'],
  ['int64_data', 7, 'int64', 'repeated'],
  ['name', 8, 'string'],
  ['raw_data', 9, 'bytes'],
  ['double_data', 10, 'double', 'repeated'],
  ['uint64_data', 11, 'uint64', 'repeated'],
  ['doc_string', 12, 'string'],
  ['external_data', 13, 'StringStringEntryProto', 'repeated'],
  ['data_location', 14, 'int32'],
];

const ATTRIBUTE: FieldSpec[] = [
  ['name', 1, 'string'],
  ['f', 2, 'float'],
  ['i', 3, 'int64'],
  ['s', 4, 'bytes'],
  ['t', 5, 'TensorProto'],
  ['g', 6, 'GraphProto'],
  ['floats', 7, 'float', 'repeated'],
  ['ints', 8, 'int64', 'repeated'],
  ['strings', 9, 'bytes', 'repeated'],
  ['tensors', 10, 'TensorProto', 'repeated'],
  ['graphs', 11, 'GraphProto', 'repeated'],
  ['doc_string', 13, 'string'],
  ['tp', 14, 'TypeProto'],
  ['type', 20, 'int32'],
  ['ref_attr_name', 21, 'string'],
];

const NODE: FieldSpec[] = [
  ['input', 1, 'string', 'repeated'],
  ['output', 2, 'string', 'repeated'],
  ['name', 3, 'string'],
  ['op_type', 4, 'string'],
  ['attribute', 5, 'AttributeProto', 'repeated'],
  ['doc_string', 6, 'string'],
  ['domain', 7, 'string'],
];

const VALUE_INFO: FieldSpec[] = [
  ['name', 1, 'string'],
  ['type', 2, 'TypeProto'],
  ['doc_string', 3, 'string'],
];

const GRAPH: FieldSpec[] = [
  ['node', 1, 'NodeProto', 'repeated'],
  ['name', 2, 'string'],
  ['initializer', 5, 'TensorProto', 'repeated'],
  ['doc_string', 10, 'string'],
  ['input', 11, 'ValueInfoProto', 'repeated'],
  ['output', 12, 'ValueInfoProto', 'repeated'],
  ['value_info', 13, 'ValueInfoProto', 'repeated'],
];

const MODEL: FieldSpec[] = [
  ['ir_version', 1, 'int64'],
  ['producer_name', 2, 'string'],
  ['producer_version', 3, 'string'],
  ['domain', 4, 'string'],
  ['model_version', 5, 'int64'],
  ['doc_string', 6, 'string'],
  ['graph', 7, 'GraphProto'],
  ['opset_import', 8, 'OperatorSetIdProto', 'repeated'],
  ['metadata_props', 14, 'StringStringEntryProto', 'repeated'],
];

function messageType(name: string, fields: FieldSpec[]): protobuf.Type {
  const type = new protobuf.Type(name);
  for (const [fieldName, id, fieldType, rule] of fields) {
    type.add(new protobuf.Field(fieldName, id, fieldType, rule));
  }
  return type;
}

/** TensorShapeProto with its nested Dimension, whose value is a number or a symbolic name. */
function tensorShapeType(): protobuf.Type {
  const dimension = messageType('Dimension', [
    ['dim_value', 1, 'int64'],
    ['dim_param', 2, 'string'],
    ['denotation', 3, 'string'],
  ]);
  dimension.add(new protobuf.OneOf('value', ['dim_value', 'dim_param']));

  const shape = messageType('TensorShapeProto', [['dim', 1, 'Dimension', 'repeated']]);
  shape.add(dimension);
  return shape;
}

/** TypeProto with its nested Tensor type (the only kind of value this toolkit declares). */
function typeProtoType(): protobuf.Type {
  const tensor = messageType('Tensor', [
    ['elem_type', 1, 'int32'],
    ['shape', 2, 'TensorShapeProto'],
  ]);

  const typeProto = messageType('TypeProto', [
    ['tensor_type', 1, 'Tensor'],
    ['denotation', 6, 'string'],
  ]);
  typeProto.add(tensor);
  typeProto.add(new protobuf.OneOf('value', ['tensor_type']));
  return typeProto;
}

function buildOnnxRoot(): protobuf.Root {
  const onnx = new protobuf.Namespace('onnx');
  onnx.add(messageType('OperatorSetIdProto', OPERATOR_SET_ID));
  onnx.add(messageType('StringStringEntryProto', STRING_STRING_ENTRY));
  onnx.add(messageType('TensorProto', TENSOR));
  onnx.add(messageType('AttributeProto', ATTRIBUTE));
  onnx.add(messageType('NodeProto', NODE));
  onnx.add(tensorShapeType());
  onnx.add(typeProtoType());
  onnx.add(messageType('ValueInfoProto', VALUE_INFO));
  onnx.add(messageType('GraphProto', GRAPH));
  onnx.add(messageType('ModelProto', MODEL));

  const root = new protobuf.Root();
  root.add(onnx);
  root.resolveAll();
  return root;
}

let onnxRoot: protobuf.Root | undefined;

/** The protobufjs type for an ONNX message, e.g. onnxType('ModelProto'). */
export function onnxType(name: string): protobuf.Type {
  onnxRoot ??= buildOnnxRoot();
  return onnxRoot.lookupType(`onnx.${name}`);
}

/** A decoded 64-bit integer (number, string or Long) as a plain number. */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Number(value);
  if (value && typeof (value as { toNumber?: unknown }).toNumber === 'function') {
    return (value as { toNumber: () => number }).toNumber();
  }
  return Number(value);
}

/** A ModelProto as plain objects, after decoding; only the fields read by this toolkit. */
export interface DecodedModel {
  irVersion: number;
  producerName: string;
  opsetImports: Array<{ domain: string; version: number }>;
  metadata: Record<string, string>;
  graph?: protobuf.Message & Record<string, unknown>;
}

/** Decodes ModelProto bytes; throws protobufjs's error when the bytes are not one. */
export function decodeModel(bytes: Uint8Array): DecodedModel {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const model = onnxType('ModelProto').decode(bytes) as any;

  const metadata: Record<string, string> = {};
  for (const entry of model.metadata_props ?? []) metadata[entry.key ?? ''] = entry.value ?? '';

  return {
    irVersion: toNumber(model.ir_version ?? 0),
    producerName: model.producer_name ?? '',
    opsetImports: (model.opset_import ?? []).map(
      (opset: { domain?: string; version?: unknown }) => ({
        domain: opset.domain ?? '',
        version: toNumber(opset.version ?? 0),
      }),
    ),
    metadata,
    graph: model.graph ?? undefined,
  };
}
